// Starts GraphiQL on this gateway: queries and mutations over POST /graphql, subscriptions over
// the WebSocket at /graphql/ws. With API_TOKEN set, put {"Authorization": "Bearer <token>"} in
// the Headers tab; it is sent with every request and in the WebSocket's connection_init.
(function () {
  "use strict";
  var http = new URL("/graphql", window.location.href).href;
  var ws = http.replace(/^http/, "ws") + "/ws";
  var fetcher = GraphiQL.createFetcher({
    url: http,
    subscriptionUrl: ws,
    wsConnectionParams: function () {
      try {
        var saved = window.localStorage.getItem("graphiql:headers");
        return saved ? JSON.parse(saved) : {};
      } catch (e) {
        return {};
      }
    },
  });
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultEditorToolsVisibility: true,
      shouldPersistHeaders: true,
    }),
  );
})();
