//! The API described: `GET /api/v1/openapi.json`, an OpenAPI 3.1 document built from the route
//! table ([`super::routes`]). Each line of the table carries an [`Op`] — its summary, query,
//! body and answer types — so a route cannot be added without appearing in the document; the
//! schemas are derived (`utoipa::ToSchema`, `utoipa::IntoParams`) from the very types the
//! handlers read and write, and the error answers each route can give are derived from what it
//! takes (path, query, body) with the one error body of [`super::error`]. Decision 17.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{HttpMethod, Operation, Parameter, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::response::Response as OaResponse;
use utoipa::openapi::schema::{
    Array, Components, KnownFormat, Object, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, InfoBuilder, OpenApi, OpenApiBuilder, Paths, Ref, RefOr, Required};
use utoipa::{IntoParams, ToSchema};

use super::routes::{Route, routes};

mod schemas;
pub(crate) use schemas::{Level, ProtocolId};

/// The named schemas the document's `components` hold.
pub(crate) type Schemas = BTreeMap<String, RefOr<Schema>>;

/// Makes a schema, registering the named ones it refers to.
type SchemaFn = fn(&mut Schemas) -> RefOr<Schema>;

/// The name of the error body's schema.
const ERROR: &str = "Error";
/// The name of the bearer-token security scheme.
const BEARER: &str = "bearer";

/// A named type's schema: registered under its name, referred to by `$ref`.
fn named<T: ToSchema>(s: &mut Schemas) -> RefOr<Schema> {
    let mut nested = Vec::new();
    T::schemas(&mut nested);
    s.extend(nested);
    s.insert(T::name().into_owned(), T::schema());
    Ref::from_schema_name(T::name()).into()
}

/// A JSON array of a named type.
fn list_of<T: ToSchema>(s: &mut Schemas) -> RefOr<Schema> {
    Array::new(named::<T>(s)).into()
}

/// Any JSON value (where the shape depends on the request, e.g. a report's name).
fn any_json(_: &mut Schemas) -> RefOr<Schema> {
    Schema::Object(Object::new()).into()
}

/// What a route takes in its body.
#[derive(Debug, Clone, Copy)]
enum Body {
    /// `application/json` of this schema.
    Json(SchemaFn),
    /// `multipart/form-data` with these parts.
    Multipart(SchemaFn),
}

/// What a route answers on success.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// JSON of this schema.
    Json(SchemaFn),
    /// JSON of this schema, or CSV when asked (`format=csv` or `Accept: text/csv`).
    JsonOrCsv(SchemaFn),
    /// Bytes of one of these media types.
    Bytes(&'static [&'static str]),
    /// A server-sent event stream.
    Events,
    /// No body.
    Empty,
}

/// A route's description in the document: built on its line of the route table.
#[derive(Debug, Clone)]
pub(crate) struct Op {
    summary: Cow<'static, str>,
    query: Option<fn() -> Vec<Parameter>>,
    body: Option<Body>,
    status: u16,
    answer: Answer,
    extra: &'static [u16],
}

/// A route that answers `200` with JSON of `T`.
pub(crate) fn op<T: ToSchema>(summary: impl Into<Cow<'static, str>>) -> Op {
    Op::new(summary, Answer::Json(named::<T>))
}

/// A route that answers `200` with a JSON array of `T`.
pub(crate) fn op_list<T: ToSchema>(summary: impl Into<Cow<'static, str>>) -> Op {
    Op::new(summary, Answer::Json(list_of::<T>))
}

impl Op {
    fn new(summary: impl Into<Cow<'static, str>>, answer: Answer) -> Self {
        Self {
            summary: summary.into(),
            query: None,
            body: None,
            status: 200,
            answer,
            extra: &[],
        }
    }

    /// A route that answers `204` without a body.
    pub(crate) fn empty(summary: impl Into<Cow<'static, str>>) -> Self {
        Self::new(summary, Answer::Empty).status(204)
    }

    /// A route that answers any JSON value (its shape depends on the request).
    pub(crate) fn any(summary: impl Into<Cow<'static, str>>) -> Self {
        Self::new(summary, Answer::Json(any_json))
    }

    /// A route that answers bytes of one of `types`.
    pub(crate) fn bytes(
        summary: impl Into<Cow<'static, str>>,
        types: &'static [&'static str],
    ) -> Self {
        Self::new(summary, Answer::Bytes(types))
    }

    /// A route that answers a server-sent event stream.
    pub(crate) fn events(summary: impl Into<Cow<'static, str>>) -> Self {
        Self::new(summary, Answer::Events)
    }

    /// It answers CSV as well, when asked.
    pub(crate) fn or_csv(mut self) -> Self {
        if let Answer::Json(f) = self.answer {
            self.answer = Answer::JsonOrCsv(f);
        }
        self
    }

    /// Its success status (200 unless said).
    pub(crate) fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// It reads the query parameters of `Q`.
    pub(crate) fn query<Q: IntoParams>(mut self) -> Self {
        self.query = Some(|| Q::into_params(|| Some(ParameterIn::Query)));
        self
    }

    /// It reads a JSON body of `B`.
    pub(crate) fn body<B: ToSchema>(mut self) -> Self {
        self.body = Some(Body::Json(named::<B>));
        self
    }

    /// It reads a JSON array of `B`.
    pub(crate) fn body_list<B: ToSchema>(mut self) -> Self {
        self.body = Some(Body::Json(list_of::<B>));
        self
    }

    /// It reads a `multipart/form-data` body with the parts of `B`.
    pub(crate) fn multipart<B: ToSchema>(mut self) -> Self {
        self.body = Some(Body::Multipart(named::<B>));
        self
    }

    /// Error statuses it can answer beyond those its path, query and body imply.
    pub(crate) fn errors(mut self, extra: &'static [u16]) -> Self {
        self.extra = extra;
        self
    }

    /// The statuses of its error answers, with what each means here.
    pub(crate) fn error_statuses(&self, method: &Method, path: &str) -> Vec<(u16, &'static str)> {
        let mut out = vec![
            (401, "no token, or an unknown, revoked or mistyped one"),
            (
                403,
                "the token's role may not call this route, or the thing lies outside the user's area",
            ),
        ];
        let has_path = path.contains('{');
        if has_path || self.query.is_some() || self.body.is_some() {
            out.push((
                400,
                "a bad id in the path, a bad query parameter, or malformed JSON",
            ));
        }
        if has_path {
            out.push((404, "the thing named in the path does not exist"));
        }
        if *method != Method::GET {
            out.push((
                409,
                "it conflicts with the state of the thing (exists, in use, an illegal move)",
            ));
        }
        match self.body {
            Some(Body::Json(_)) => {
                out.push((413, "the body is too large"));
                out.push((415, "the body is not `Content-Type: application/json`"));
                out.push((
                    422,
                    "well-formed JSON that does not fit (the message names the field)",
                ));
            }
            Some(Body::Multipart(_)) => {
                out.push((413, "a part is too large"));
                out.push((
                    415,
                    "not multipart/form-data, or a photo that is not JPEG or PNG",
                ));
                out.push((422, "a part that does not fit (the message names it)"));
            }
            None => {}
        }
        for &s in self.extra {
            if !out.iter().any(|(o, _)| *o == s) {
                out.push((s, "see the summary"));
            }
        }
        out.push((
            500,
            "an internal error: logged with its cause, answered generically",
        ));
        out.push((
            503,
            "the store is busy or shutting down, or the pipeline could not be told",
        ));
        if *method != Method::GET {
            out.push((507, "the store's disk is full: nothing was written"));
        }
        out.sort_unstable_by_key(|(s, _)| *s);
        out
    }
}

/// The error body every error answer carries.
#[derive(Debug, ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorSchema {
    /// What was wrong and what is expected.
    #[allow(dead_code)] // read by the schema only
    error: String,
}

fn http_method(m: &Method) -> HttpMethod {
    match *m {
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::DELETE => HttpMethod::Delete,
        Method::PATCH => HttpMethod::Patch,
        _ => HttpMethod::Get,
    }
}

/// The `{name}` parameters of a path, in order.
fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

fn string_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .into()
}

/// An operation id from the method and path: `get_devices_id_history`.
fn operation_id(method: &Method, path: &str) -> String {
    let mut id = method.as_str().to_ascii_lowercase();
    for seg in path.trim_start_matches("/api/v1/").split('/') {
        id.push('_');
        id.extend(
            seg.chars()
                .filter(|c| !matches!(c, '{' | '}'))
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    id
}

fn operation(route: &Route, schemas: &mut Schemas) -> Operation {
    let Route { rule, doc, .. } = route;
    let mut params: Vec<Parameter> = path_params(rule.path)
        .into_iter()
        .map(|name| {
            Parameter::builder()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(string_schema()))
                .build()
        })
        .collect();
    if let Some(query) = doc.query {
        params.extend(query());
    }
    let mut op = Operation::builder()
        .operation_id(Some(operation_id(&rule.method, rule.path)))
        .summary(Some(doc.summary.clone()))
        .description(Some(format!("Roles: {}.", rule.roles)))
        .parameters(Some(params))
        .security(SecurityRequirement::new(BEARER, Vec::<String>::new()));
    if let Some(body) = doc.body {
        let (media, schema) = match body {
            Body::Json(f) => ("application/json", f(schemas)),
            Body::Multipart(f) => ("multipart/form-data", f(schemas)),
        };
        op = op.request_body(Some(
            RequestBody::builder()
                .content(media, Content::new(Some(schema)))
                .required(Some(Required::True))
                .build(),
        ));
    }
    let ok = match doc.answer {
        Answer::Json(f) => OaResponse::builder()
            .description("done")
            .content("application/json", Content::new(Some(f(schemas)))),
        Answer::JsonOrCsv(f) => OaResponse::builder()
            .description("done: JSON, or CSV when asked (`format=csv` or `Accept: text/csv`)")
            .content("application/json", Content::new(Some(f(schemas))))
            .content("text/csv", Content::new(Some(string_schema()))),
        Answer::Bytes(types) => {
            let binary: Schema = ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
                .into();
            types
                .iter()
                .fold(OaResponse::builder().description("the bytes"), |b, t| {
                    b.content(*t, Content::new(Some(binary.clone())))
                })
        }
        Answer::Events => OaResponse::builder()
            .description("server-sent events; never ends")
            .content("text/event-stream", Content::new(Some(string_schema()))),
        Answer::Empty => OaResponse::builder().description("done; no body"),
    };
    op = op.response(doc.status.to_string(), ok.build());
    for (status, why) in doc.error_statuses(&rule.method, rule.path) {
        op = op.response(
            status.to_string(),
            OaResponse::builder()
                .description(why)
                .content(
                    "application/json",
                    Content::new(Some(Ref::from_schema_name(ERROR))),
                )
                .build(),
        );
    }
    op.build()
}

/// Every `$ref` name in `value`.
fn refs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", serde_json::Value::String(r)) => {
                        out.push(r.trim_start_matches("#/components/schemas/").to_string());
                    }
                    _ => refs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// The schemas of the primitive types that the derived schemas name by `$ref` where a field's
/// type is an alias of one (`UnixMs` = `u64`, `SiteId` = `i64`, `ChannelNo` = `u8`).
fn primitives(paths: &Paths, schemas: &mut Schemas) {
    let mut names = Vec::new();
    for value in [serde_json::to_value(paths), serde_json::to_value(&*schemas)] {
        // Serializing a tree of strings, maps and numbers cannot fail.
        refs(&value.unwrap_or_default(), &mut names);
    }
    for name in names {
        let (ty, format, min, max): (Type, Option<KnownFormat>, Option<f64>, Option<f64>) =
            match name.as_str() {
                "u8" => (
                    Type::Integer,
                    Some(KnownFormat::Int32),
                    Some(0.0),
                    Some(255.0),
                ),
                "u16" => (
                    Type::Integer,
                    Some(KnownFormat::Int32),
                    Some(0.0),
                    Some(65535.0),
                ),
                "u32" => (
                    Type::Integer,
                    Some(KnownFormat::Int64),
                    Some(0.0),
                    Some(4_294_967_295.0),
                ),
                "u64" => (Type::Integer, Some(KnownFormat::Int64), Some(0.0), None),
                "i32" => (Type::Integer, Some(KnownFormat::Int32), None, None),
                "i64" => (Type::Integer, Some(KnownFormat::Int64), None, None),
                "f32" | "f64" => (Type::Number, Some(KnownFormat::Double), None, None),
                _ => continue,
            };
        schemas.entry(name).or_insert_with(|| {
            ObjectBuilder::new()
                .schema_type(ty)
                .format(format.map(SchemaFormat::KnownFormat))
                .minimum(min)
                .maximum(max)
                .into()
        });
    }
}

/// The document, built from the route table.
pub(crate) fn document() -> OpenApi {
    let mut schemas = Schemas::new();
    named::<ErrorSchema>(&mut schemas);
    let mut paths = Paths::new();
    for route in routes() {
        let op = operation(&route, &mut schemas);
        paths.add_path_operation(route.rule.path, vec![http_method(&route.rule.method)], op);
    }
    primitives(&paths, &mut schemas);
    let mut components = Components::new();
    components.schemas = schemas;
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "`Authorization: Bearer TOKEN`: a token made by `firegrid user add` or \
                     `POST /api/v1/users` (docs/security.md)",
                ))
                .build(),
        ),
    );
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("firegrid gateway API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Every route needs a bearer token and allows the roles its description \
                     names. Times are ms since the Unix epoch. Every error is JSON \
                     `{\"error\": \"...\"}`.",
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(components))
        .build()
}

/// `GET /api/v1/openapi.json`: the document (built once).
pub(super) async fn openapi_json() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    let body = DOC.get_or_init(|| {
        // Serializing a tree of strings, maps and numbers cannot fail.
        serde_json::to_string(&document()).expect("the OpenAPI document serializes")
    });
    ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response()
}

#[cfg(test)]
mod tests;
