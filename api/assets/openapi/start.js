// Renders /openapi.json with Swagger UI, served by this gateway; "Try it out" calls it. With
// API_TOKEN set, use Authorize with the token first. No validator badge: it would call a
// third-party service.
(function () {
  "use strict";
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
  });
})();
