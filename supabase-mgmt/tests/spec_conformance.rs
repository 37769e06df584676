//! Checks the crate against the official OpenAPI spec in `tests/fixtures`: every
//! request the client sends exists there (path, method, query parameters, body
//! fields), every fixture has exactly the spec's fields, and every enum knows the
//! spec's values.

mod fixtures;

use std::collections::BTreeSet;

use fixtures::{project_ref, ORG};
use serde_json::Value;
use supabase_mgmt::{
    ApiKeyType, Continent, CreateApiKeyRequest, CreateProjectRequest, HealthStatus, InstanceSize,
    NewApiKeyType, PoolMode, PoolerDatabaseType, ProjectQuery, ProjectRegion, ProjectStatus,
    Region, RegionProvider, RegionSelection, RunQueryRequest, ServiceName, SmartGroup,
};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// Resolves `{"$ref": "#/components/schemas/X"}`.
fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            &spec["components"]["schemas"][name]
        }
        None => schema,
    }
}

fn schema<'a>(spec: &'a Value, name: &str) -> &'a Value {
    let schema = &spec["components"]["schemas"][name];
    assert!(schema.is_object(), "the spec has no schema {name}");
    schema
}

/// Checks that `value`'s keys are the schema's properties and include the required
/// ones, recursing into nested objects and arrays.
fn assert_matches_schema(spec: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = resolve(spec, schema);
    match value {
        Value::Object(fields) => {
            let Some(properties) = schema["properties"].as_object() else {
                return; // free-form object (additionalProperties) or a oneOf
            };
            for (key, field) in fields {
                let property = properties
                    .get(key)
                    .unwrap_or_else(|| panic!("{at}.{key} is not in the spec"));
                assert_matches_schema(spec, property, field, &format!("{at}.{key}"));
            }
            for required in schema["required"].as_array().into_iter().flatten() {
                let required = required.as_str().unwrap();
                assert!(
                    fields.contains_key(required),
                    "{at}.{required} is required by the spec"
                );
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                assert_matches_schema(spec, &schema["items"], item, &format!("{at}[{i}]"));
            }
        }
        Value::String(text) => {
            if let Some(values) = schema["enum"].as_array() {
                assert!(
                    values.iter().any(|v| v == text),
                    "{at} = {text} is not one of the spec's values"
                );
            }
        }
        _ => {}
    }
}

#[test]
fn fixtures_have_the_fields_of_the_spec_schemas() {
    let spec = fixtures::spec();
    let r = project_ref(1);
    let cases = [
        (
            "V1ProjectWithDatabaseResponse",
            fixtures::project_json(&r, "acme", "ACTIVE_HEALTHY"),
        ),
        (
            "V1ProjectResponse",
            fixtures::created_project_json(&r, "acme"),
        ),
        (
            "V1ServiceHealthResponse",
            fixtures::health_json("db", "ACTIVE_HEALTHY"),
        ),
        (
            "OrganizationResponseV1",
            fixtures::organizations_json()[0].clone(),
        ),
        ("RegionsInfo", fixtures::regions_json()),
    ];
    for (name, value) in &cases {
        assert_matches_schema(&spec, schema(&spec, name), value, name);
    }
    for key in fixtures::api_keys_json().as_array().unwrap() {
        assert_matches_schema(
            &spec,
            schema(&spec, "ApiKeyResponse"),
            key,
            "ApiKeyResponse",
        );
    }
    let listed =
        fixtures::organization_project_json(&r, "acme", "INACTIVE", "2026-11-26T02:00:00Z");
    let item = &schema(&spec, "OrganizationProjectsResponse")["properties"]["projects"]["items"];
    assert_matches_schema(
        &spec,
        item,
        &listed,
        "OrganizationProjectsResponse.projects[]",
    );
    for pooler in fixtures::pooler_json(&r, "127.0.0.1", 6543, "postgres")
        .as_array()
        .unwrap()
    {
        assert_matches_schema(
            &spec,
            schema(&spec, "SupavisorConfigResponse"),
            pooler,
            "SupavisorConfigResponse",
        );
    }
}

/// The spec operation a request matches: (path template, operation).
fn operation<'a>(spec: &'a Value, request: &Request) -> (&'a str, &'a Value) {
    let method = request.method.as_str().to_ascii_lowercase();
    let actual: Vec<&str> = request
        .url
        .path()
        .trim_start_matches('/')
        .split('/')
        .collect();
    let paths = spec["paths"].as_object().unwrap();
    // Prefer literal segments over parameters (`available-regions` over `{ref}`).
    let mut candidates: Vec<(&str, usize)> = paths
        .keys()
        .filter_map(|template| {
            let expected: Vec<&str> = template.trim_start_matches('/').split('/').collect();
            let fits = expected.len() == actual.len()
                && expected
                    .iter()
                    .zip(&actual)
                    .all(|(e, a)| e.starts_with('{') || e == a);
            let literals = expected.iter().filter(|e| !e.starts_with('{')).count();
            fits.then_some((template.as_str(), literals))
        })
        .collect();
    candidates.sort_by_key(|(_, literals)| std::cmp::Reverse(*literals));
    let (template, _) = candidates.first().unwrap_or_else(|| {
        panic!(
            "{} {} is not a path of the spec",
            request.method,
            request.url.path()
        )
    });
    let op = &paths[*template][&method];
    assert!(op.is_object(), "the spec has no {method} on {template}");
    (template, op)
}

#[tokio::test]
async fn every_request_the_client_sends_is_in_the_spec() {
    let spec = fixtures::spec();
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({})))
        .mount(&server)
        .await;
    let client = fixtures::client(&server);
    let r = project_ref(3);
    let create = CreateProjectRequest::new(
        "acme",
        ORG,
        "pw-0123456789".into(),
        RegionSelection::SmartGroup(SmartGroup::Emea),
    )
    .with_instance_size(InstanceSize::Small);
    let legacy = CreateProjectRequest::new(
        "acme",
        ORG,
        "pw-0123456789".into(),
        ProjectRegion::Legacy(Region::EuWest1),
    );

    // The answers do not decode ({}); only the requests matter here.
    let _ = client.list_organizations().await;
    let _ = client.list_projects().await;
    let _ = client
        .list_organization_projects(ORG, &ProjectQuery::new().search("acme").offset(100))
        .await;
    let _ = client.create_project(&create).await;
    let _ = client.create_project(&legacy).await;
    let _ = client.get_project(&r).await;
    let _ = client.delete_project(&r).await;
    let _ = client.pause_project(&r).await;
    let _ = client.restore_project(&r).await;
    let _ = client
        .project_health(&r, &[ServiceName::Db, ServiceName::Pooler])
        .await;
    let _ = client.api_keys(&r, true).await;
    let _ = client
        .create_api_key(
            &r,
            &CreateApiKeyRequest::new(NewApiKeyType::Secret, "ci_key").with_description("d"),
        )
        .await;
    let _ = client
        .run_query(
            &r,
            &RunQueryRequest::new("select 1")
                .with_parameters(vec![1.into()])
                .read_only(),
        )
        .await;
    let _ = client
        .update_database_password(&r, &"pw-0123456789".into())
        .await;
    let _ = client.pooler_config(&r).await;
    let _ = client.available_regions(ORG, Some(Continent::Europe)).await;

    let requests = server.received_requests().await.unwrap();
    let mut covered = BTreeSet::new();
    for request in &requests {
        let (template, op) = operation(&spec, request);
        covered.insert(format!("{} {template}", request.method));
        let parameters: Vec<&Value> = op["parameters"].as_array().into_iter().flatten().collect();
        for (name, _) in request.url.query_pairs() {
            assert!(
                parameters
                    .iter()
                    .any(|p| p["in"] == "query" && p["name"] == name.as_ref()),
                "{template}: query parameter {name} is not in the spec"
            );
        }
        if !request.body.is_empty() {
            let body_schema = &op["requestBody"]["content"]["application/json"]["schema"];
            assert!(
                body_schema.is_object(),
                "{template} takes no JSON body in the spec"
            );
            let body: Value = request.body_json().unwrap();
            assert_body_matches(&spec, body_schema, &body, template);
        }
    }
    assert_eq!(covered.len(), 15, "{covered:#?}");
}

/// Request bodies: every field is a property; `oneOf`s are matched by any branch.
fn assert_body_matches(spec: &Value, schema: &Value, body: &Value, at: &str) {
    let schema = resolve(spec, schema);
    if let Some(branches) = schema["oneOf"].as_array() {
        let fits = |branch: &Value| {
            let properties = branch["properties"].as_object();
            body.as_object().unwrap().iter().all(|(key, value)| {
                properties.and_then(|p| p.get(key)).is_some_and(|p| {
                    p["enum"]
                        .as_array()
                        .is_none_or(|values| values.contains(value))
                })
            })
        };
        assert!(
            branches.iter().any(fits),
            "{at}: {body} fits no branch of the spec's oneOf"
        );
        return;
    }
    if let (Some(fields), Some(properties)) = (body.as_object(), schema["properties"].as_object()) {
        for (key, value) in fields {
            let property = properties
                .get(key)
                .unwrap_or_else(|| panic!("{at}: body field {key} is not in the spec"));
            assert_body_matches(spec, property, value, &format!("{at}.{key}"));
        }
        for required in schema["required"].as_array().into_iter().flatten() {
            assert!(
                fields.contains_key(required.as_str().unwrap()),
                "{at}: required field {required} missing"
            );
        }
    } else if let (Some(text), Some(values)) = (body.as_str(), schema["enum"].as_array()) {
        assert!(
            values.iter().any(|v| v == text),
            "{at} = {text} is not one of the spec's values"
        );
    }
}

fn spec_enum(spec: &Value, pointer: &str) -> BTreeSet<String> {
    spec.pointer(pointer)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no enum at {pointer}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn ours<T: ToString>(values: &[T]) -> BTreeSet<String> {
    values.iter().map(ToString::to_string).collect()
}

#[test]
fn enums_know_exactly_the_spec_values() {
    let spec = fixtures::spec();
    let s = "/components/schemas";
    let checks = [
        (
            ours(ProjectStatus::known()),
            format!("{s}/V1ProjectWithDatabaseResponse/properties/status/enum"),
        ),
        (
            ours(ProjectStatus::known()),
            format!("{s}/V1ProjectResponse/properties/status/enum"),
        ),
        (
            ours(ServiceName::known()),
            format!("{s}/V1ServiceHealthResponse/properties/name/enum"),
        ),
        (
            ours(HealthStatus::known()),
            format!("{s}/V1ServiceHealthResponse/properties/status/enum"),
        ),
        (
            ours(Region::known()),
            format!("{s}/V1CreateProjectBody/properties/region/enum"),
        ),
        (
            ours(Region::known()),
            format!(
                "{s}/V1CreateProjectBody/properties/region_selection/oneOf/0/properties/code/enum"
            ),
        ),
        (
            ours(SmartGroup::known()),
            format!(
                "{s}/V1CreateProjectBody/properties/region_selection/oneOf/1/properties/code/enum"
            ),
        ),
        (
            ours(InstanceSize::known()),
            format!("{s}/V1CreateProjectBody/properties/desired_instance_size/enum"),
        ),
        (
            ours(ApiKeyType::known()),
            format!("{s}/ApiKeyResponse/properties/type/enum"),
        ),
        (
            ours(PoolMode::known()),
            format!("{s}/SupavisorConfigResponse/properties/pool_mode/enum"),
        ),
        (
            ours(PoolerDatabaseType::known()),
            format!("{s}/SupavisorConfigResponse/properties/database_type/enum"),
        ),
        (
            ours(RegionProvider::known()),
            format!(
                "{s}/RegionsInfo/properties/all/properties/specific/items/properties/provider/enum"
            ),
        ),
        (
            ours(Continent::known()),
            "/paths/~1v1~1projects~1available-regions/get/parameters/1/schema/enum".to_owned(),
        ),
    ];
    for (ours, pointer) in checks {
        assert_eq!(ours, spec_enum(&spec, &pointer), "{pointer}");
    }
    let services = spec_enum(
        &spec,
        "/paths/~1v1~1projects~1{ref}~1health/get/parameters/1/schema/items/enum",
    );
    assert_eq!(ours(ServiceName::known()), services);
}
