use serde::Serialize;

/// The body of `POST /v1/projects/{ref}/database/query` (`V1RunQueryBody`).
///
/// ```
/// use supabase_mgmt::RunQueryRequest;
///
/// let query = RunQueryRequest::new("select $1::int as n").with_parameters(vec![1.into()]).read_only();
/// assert_eq!(
///     serde_json::to_value(&query).unwrap(),
///     serde_json::json!({"query": "select $1::int as n", "parameters": [1], "read_only": true})
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RunQueryRequest {
    /// The SQL to run.
    pub query: String,
    /// Positional parameters (`$1`, `$2`, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<serde_json::Value>,
    /// Whether to run the query read-only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

impl RunQueryRequest {
    /// A query without parameters.
    pub fn new(query: impl Into<String>) -> Self {
        Self {
            query: query.into(),
            parameters: Vec::new(),
            read_only: None,
        }
    }

    /// Sets the positional parameters.
    pub fn with_parameters(mut self, parameters: Vec<serde_json::Value>) -> Self {
        self.parameters = parameters;
        self
    }

    /// Runs the query read-only.
    pub fn read_only(mut self) -> Self {
        self.read_only = Some(true);
        self
    }
}
