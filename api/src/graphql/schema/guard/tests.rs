use super::*;
use async_graphql::parser::parse_query;

/// graphql-js `getIntrospectionQuery()` (v16, with every option on and the deepest `TypeRef`).
pub(crate) const INTROSPECTION_QUERY: &str = r#"
query IntrospectionQuery {
  __schema {
    description
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description isRepeatable locations args(includeDeprecated: true) { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description specifiedByURL
  fields(includeDeprecated: true) {
    name description
    args(includeDeprecated: true) { ...InputValue }
    type { ...TypeRef }
    isDeprecated deprecationReason
  }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name description type { ...TypeRef } defaultValue isDeprecated deprecationReason
}
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }
}
"#;

fn priced(query: &str) -> ServerResult<()> {
    let document = parse_query(query).expect("the test query parses");
    check(&document, &Variables::default(), &QueryLimits::default()).map(drop)
}

fn code(error: &ServerError) -> String {
    let extensions = error.extensions.as_ref().expect("a coded error");
    match extensions.get("code") {
        Some(Value::String(code)) => code.clone(),
        other => panic!("code {other:?}"),
    }
}

/// Fragment `F0` spreads `F1` twice, ..., the last selects `__typename`.
fn fragment_bomb(levels: usize) -> String {
    let mut query = String::from("query { ...F0 }\n");
    for level in 0..levels {
        let next = level + 1;
        query.push_str(&format!(
            "fragment F{level} on QueryRoot {{ ...F{next} ...F{next} }}\n"
        ));
    }
    query.push_str(&format!(
        "fragment F{levels} on QueryRoot {{ __typename }}\n"
    ));
    query
}

#[test]
fn fragment_bombs_are_priced_without_expanding_them() {
    for levels in [24, 30, 60] {
        let query = fragment_bomb(levels);
        assert!(query.len() < 4096, "{} bytes", query.len());
        let error = priced(&query).expect_err("a bomb is refused");
        assert_eq!(code(&error), "QUERY_TOO_COSTLY", "{}", error.message);
    }
    // A few levels cost what they expand to, and pass.
    assert!(priced(&fragment_bomb(8)).is_ok());
}

#[test]
fn a_fragment_cycle_or_an_endless_chain_is_refused_not_recursed() {
    let cycle = "query { ...A } fragment A on QueryRoot { ...B } fragment B on QueryRoot { ...A }";
    assert_eq!(
        code(&priced(cycle).unwrap_err()),
        "GRAPHQL_VALIDATION_FAILED"
    );

    let mut chain = String::from("query { ...F0 }\n");
    for level in 0..10_000 {
        chain.push_str(&format!(
            "fragment F{level} on QueryRoot {{ ...F{} }}\n",
            level + 1
        ));
    }
    assert_eq!(code(&priced(&chain).unwrap_err()), "QUERY_TOO_DEEP");
}

#[test]
fn lists_weigh_their_page_size() {
    let amplified = "{ seriesList(first: 100) { nodes { models { trainingData { value } } } } }";
    let error = priced(amplified).unwrap_err();
    assert_eq!(code(&error), "QUERY_TOO_COSTLY", "{}", error.message);
    // A page of ten series' newest models, 100 points each, is fine.
    let small = "{ seriesList(first: 10) { nodes { latest { trainingData(first: 100) { timestamp value } } } } }";
    priced(small).unwrap();
    // `first` from a variable counts the same as a literal.
    let document = parse_query(
        "query($n: Int!) { seriesList(first: 10) { nodes { latest { trainingData(first: $n) { value } } } } }",
    )
    .unwrap();
    let variables = |n: u64| Variables::from_json(serde_json::json!({ "n": n }));
    let limits = QueryLimits::default();
    check(&document, &variables(100), &limits).unwrap();
    let error = check(&document, &variables(10_000), &limits).unwrap_err();
    assert_eq!(code(&error), "QUERY_TOO_COSTLY");
}

#[test]
fn depth_is_limited_outside_introspection() {
    let deep = "{ a { b { c { d { e { f { g { h { i { j { k } } } } } } } } } } }";
    assert_eq!(code(&priced(deep).unwrap_err()), "QUERY_TOO_DEEP");
}

#[test]
fn the_standard_introspection_query_is_allowed_and_a_nested_one_is_not() {
    priced(INTROSPECTION_QUERY).unwrap();
    let nested = "{ __schema { types { fields { type { fields { type { fields { type { fields { name } } } } } } } } } }";
    assert_eq!(code(&priced(nested).unwrap_err()), "QUERY_TOO_COSTLY");
}

#[tokio::test]
async fn introspection_weights_cover_this_schema() {
    let schema = super::super::builder(&QueryLimits::default()).finish();
    let answer = schema.execute(INTROSPECTION_QUERY).await;
    assert!(answer.errors.is_empty(), "{:?}", answer.errors);
    let data = answer.data.into_json().unwrap();
    let schema = &data["__schema"];
    let len = |v: &serde_json::Value| v.as_array().map_or(0, Vec::len) as u64;
    let types = schema["types"].as_array().unwrap();
    assert!(len(&schema["types"]) <= introspection_weight("types"));
    for ty in types {
        for list in [
            "fields",
            "inputFields",
            "enumValues",
            "interfaces",
            "possibleTypes",
        ] {
            assert!(
                len(&ty[list]) <= introspection_weight(list),
                "{list} of {}",
                ty["name"]
            );
        }
        for field in ty["fields"].as_array().into_iter().flatten() {
            assert!(len(&field["args"]) <= introspection_weight("args"));
        }
    }
    let directives = schema["directives"].as_array().unwrap();
    assert!(len(&schema["directives"]) <= introspection_weight("directives"));
    for directive in directives {
        assert!(len(&directive["locations"]) <= introspection_weight("locations"));
        assert!(len(&directive["args"]) <= introspection_weight("args"));
    }
}

#[test]
fn json_size_estimates_an_answer_from_above() {
    let value = Value::from_json(serde_json::json!({
        "points": (0..100).map(|i| serde_json::json!({ "timestamp": i, "value": 0.5 })).collect::<Vec<_>>(),
        "name": "sensor",
    }))
    .unwrap();
    let exact = serde_json::to_string(&value).unwrap().len();
    let estimate = json_size(&value);
    assert!(
        estimate >= exact && estimate < exact * 4,
        "{estimate} vs {exact}"
    );
}
