//! A submitted console form (`application/x-www-form-urlencoded`), or a page's query string.

/// A submitted form, or a query string.
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The request's query string.
    pub fn query(req: &actix_web::HttpRequest) -> Form {
        Form::parse(req.query_string().as_bytes())
    }

    /// A field's value, if it was sent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A field's value, empty when it was not sent.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or_default()
    }
}
