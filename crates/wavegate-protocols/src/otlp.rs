//! OTLP/HTTP traces (`POST /v1/traces`, OpenTelemetry protocol 1.x): a request decoded from
//! protobuf or JSON, gzip-compressed or not, into the [`Span`]s wavegate reads, and the
//! standard answers. Only the fields read are declared; unknown fields are skipped, as the
//! protocol asks of receivers. Pure: bytes in, spans out (the server attributes them).

use std::sync::Arc;

use prost::Message;
use serde::{Deserialize, Deserializer};

/// Largest body accepted after decompression (a gzip bomb stops here).
pub const MAX_DECODED_BYTES: usize = 32 * 1024 * 1024;

/// The OTLP path for traces.
pub const TRACES_PATH: &str = "/v1/traces";

/// How the request (and so the answer) is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json` (OTLP/JSON: hex ids, camelCase, enums as integers).
    Json,
}

impl Encoding {
    /// The encoding of a `Content-Type` header value (parameters ignored).
    pub fn of(content_type: Option<&str>) -> Option<Encoding> {
        let media = content_type?.split(';').next()?.trim().to_ascii_lowercase();
        match media.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }

    /// The `Content-Type` of answers in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// A scalar attribute value (arrays, maps and bytes are not read, and are dropped).
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// `stringValue`.
    Str(String),
    /// `boolValue`.
    Bool(bool),
    /// `intValue`.
    Int(i64),
    /// `doubleValue`.
    Double(f64),
}

impl Scalar {
    /// The value as text (numbers and booleans written out), as an id attribute is read.
    pub fn as_text(&self) -> String {
        match self {
            Scalar::Str(s) => s.clone(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Double(d) => d.to_string(),
        }
    }

    /// The value as a number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Scalar::Int(i) => Some(*i as f64),
            Scalar::Double(d) => Some(*d),
            Scalar::Str(_) | Scalar::Bool(_) => None,
        }
    }
}

/// Attributes, in the order sent.
pub type Attributes = Vec<(String, Scalar)>;

/// Looks `key` up in `attributes`.
pub fn attribute<'a>(attributes: &'a Attributes, key: &str) -> Option<&'a Scalar> {
    attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// A span event (an OpenFeature evaluation is one).
#[derive(Debug, Clone, PartialEq)]
pub struct SpanEvent {
    /// When it happened, in nanoseconds since the Unix epoch.
    pub time_unix_nano: u64,
    /// Its name.
    pub name: String,
    /// Its attributes.
    pub attributes: Attributes,
}

/// The parts of a span that wavegate reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Trace id (16 bytes when well-formed).
    pub trace_id: Vec<u8>,
    /// Span id (8 bytes).
    pub span_id: Vec<u8>,
    /// Parent span id (empty for a root span).
    pub parent_span_id: Vec<u8>,
    /// Span name.
    pub name: String,
    /// Start, nanoseconds since the epoch.
    pub start_time_unix_nano: u64,
    /// End, nanoseconds since the epoch.
    pub end_time_unix_nano: u64,
    /// Whether its status is ERROR.
    pub error: bool,
    /// Its attributes.
    pub attributes: Attributes,
    /// Its events.
    pub events: Vec<SpanEvent>,
    /// Its resource's attributes (shared by the resource's spans); `service.name` names the
    /// service.
    pub resource: Arc<Attributes>,
}

impl Span {
    /// The resource's `service.name`.
    pub fn service(&self) -> Option<&str> {
        match attribute(&self.resource, "service.name") {
            Some(Scalar::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// The span's duration in milliseconds (0 when its clock ran backwards).
    pub fn duration_ms(&self) -> f64 {
        self.end_time_unix_nano.saturating_sub(self.start_time_unix_nano) as f64 / 1e6
    }
}

/// Why a request could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The `Content-Type` is neither protobuf nor JSON.
    #[error("Content-Type must be application/x-protobuf or application/json")]
    UnsupportedType,
    /// The `Content-Encoding` is not gzip or identity.
    #[error("Content-Encoding must be gzip or identity, got {0:?}")]
    UnsupportedEncoding(String),
    /// The gzip stream is broken or too large.
    #[error("gzip body: {0}")]
    Gzip(String),
    /// The message does not decode.
    #[error("malformed OTLP {0}")]
    Malformed(String),
}

/// Decodes an `ExportTraceServiceRequest` body sent with `content_type` and
/// `content_encoding`.
pub fn decode(
    body: &[u8],
    content_type: Option<&str>,
    content_encoding: Option<&str>,
) -> Result<(Encoding, Vec<Span>), DecodeError> {
    let encoding = Encoding::of(content_type).ok_or(DecodeError::UnsupportedType)?;
    let inflated;
    let body = match content_encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("identity") => body,
        Some("gzip") => {
            inflated = gunzip(body)?;
            &inflated[..]
        }
        Some(other) => return Err(DecodeError::UnsupportedEncoding(other.to_owned())),
    };
    let spans = match encoding {
        Encoding::Protobuf => {
            let req = pb::ExportTraceServiceRequest::decode(body)
                .map_err(|e| DecodeError::Malformed(format!("protobuf: {e}")))?;
            from_protobuf(req)
        }
        Encoding::Json => {
            let req: json::Request = serde_json::from_slice(body)
                .map_err(|e| DecodeError::Malformed(format!("JSON: {e}")))?;
            from_json(req)?
        }
    };
    Ok((encoding, spans))
}

fn gunzip(body: &[u8]) -> Result<Vec<u8>, DecodeError> {
    use std::io::Read as _;
    let mut out = Vec::new();
    let limit = MAX_DECODED_BYTES as u64 + 1;
    flate2::read::MultiGzDecoder::new(body)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Gzip(e.to_string()))?;
    if out.len() > MAX_DECODED_BYTES {
        return Err(DecodeError::Gzip(format!(
            "decompresses to more than {} MiB",
            MAX_DECODED_BYTES >> 20
        )));
    }
    Ok(out)
}

/// The success answer: an `ExportTraceServiceResponse`, with `partial_success` when some
/// spans were rejected or there is a warning (`rejected` 0 and a message).
pub fn success(encoding: Encoding, rejected: i64, message: &str) -> Vec<u8> {
    let partial = (rejected > 0 || !message.is_empty()).then(|| pb::PartialSuccess {
        rejected_spans: rejected,
        error_message: message.to_owned(),
    });
    match encoding {
        Encoding::Protobuf => {
            pb::ExportTraceServiceResponse { partial_success: partial }.encode_to_vec()
        }
        Encoding::Json => {
            let body = match partial {
                Some(p) => serde_json::json!({"partialSuccess": {
                    "rejectedSpans": p.rejected_spans.to_string(), "errorMessage": p.error_message}}),
                None => serde_json::json!({}),
            };
            body.to_string().into_bytes()
        }
    }
}

fn scalar_pb(v: Option<pb::AnyValue>) -> Option<Scalar> {
    match v?.value? {
        pb::any_value::Value::StringValue(s) => Some(Scalar::Str(s)),
        pb::any_value::Value::BoolValue(b) => Some(Scalar::Bool(b)),
        pb::any_value::Value::IntValue(i) => Some(Scalar::Int(i)),
        pb::any_value::Value::DoubleValue(d) => Some(Scalar::Double(d)),
    }
}

fn attributes_pb(kvs: Vec<pb::KeyValue>) -> Attributes {
    kvs.into_iter().filter_map(|kv| Some((kv.key, scalar_pb(kv.value)?))).collect()
}

fn from_protobuf(req: pb::ExportTraceServiceRequest) -> Vec<Span> {
    let mut out = Vec::new();
    for rs in req.resource_spans {
        let resource =
            Arc::new(rs.resource.map(|r| attributes_pb(r.attributes)).unwrap_or_default());
        for ss in rs.scope_spans {
            for s in ss.spans {
                out.push(Span {
                    trace_id: s.trace_id,
                    span_id: s.span_id,
                    parent_span_id: s.parent_span_id,
                    name: s.name,
                    start_time_unix_nano: s.start_time_unix_nano,
                    end_time_unix_nano: s.end_time_unix_nano,
                    error: s.status.is_some_and(|st| st.code == pb::STATUS_CODE_ERROR),
                    attributes: attributes_pb(s.attributes),
                    events: s
                        .events
                        .into_iter()
                        .map(|e| SpanEvent {
                            time_unix_nano: e.time_unix_nano,
                            name: e.name,
                            attributes: attributes_pb(e.attributes),
                        })
                        .collect(),
                    resource: resource.clone(),
                });
            }
        }
    }
    out
}

fn attributes_json(kvs: Vec<json::KeyValue>) -> Attributes {
    kvs.into_iter()
        .filter_map(|kv| {
            let v = kv.value?;
            let s = if let Some(s) = v.string_value {
                Scalar::Str(s)
            } else if let Some(b) = v.bool_value {
                Scalar::Bool(b)
            } else if let Some(i) = v.int_value {
                Scalar::Int(i.0)
            } else {
                Scalar::Double(v.double_value?)
            };
            Some((kv.key, s))
        })
        .collect()
}

fn hex_id(field: &str, text: &str) -> Result<Vec<u8>, DecodeError> {
    hex::decode(text)
        .map_err(|e| DecodeError::Malformed(format!("JSON: {field} {text:?} is not hex ({e})")))
}

fn from_json(req: json::Request) -> Result<Vec<Span>, DecodeError> {
    let mut out = Vec::new();
    for rs in req.resource_spans {
        let resource =
            Arc::new(rs.resource.map(|r| attributes_json(r.attributes)).unwrap_or_default());
        for ss in rs.scope_spans {
            for s in ss.spans {
                out.push(Span {
                    trace_id: hex_id("traceId", &s.trace_id)?,
                    span_id: hex_id("spanId", &s.span_id)?,
                    parent_span_id: hex_id("parentSpanId", &s.parent_span_id)?,
                    name: s.name,
                    start_time_unix_nano: s.start_time_unix_nano.0 as u64,
                    end_time_unix_nano: s.end_time_unix_nano.0 as u64,
                    error: s.status.is_some_and(|st| st.code.0 == i64::from(pb::STATUS_CODE_ERROR)),
                    attributes: attributes_json(s.attributes),
                    events: s
                        .events
                        .into_iter()
                        .map(|e| SpanEvent {
                            time_unix_nano: e.time_unix_nano.0 as u64,
                            name: e.name,
                            attributes: attributes_json(e.attributes),
                        })
                        .collect(),
                    resource: resource.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// The protobuf messages of `opentelemetry/proto/collector/trace/v1` and what they hold,
/// reduced to the fields read (the others are skipped while decoding).
pub mod pb {
    /// `Status.code` of a failed span.
    pub const STATUS_CODE_ERROR: i32 = 2;

    /// `ExportTraceServiceRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportTraceServiceRequest {
        /// `resource_spans`.
        #[prost(message, repeated, tag = "1")]
        pub resource_spans: Vec<ResourceSpans>,
    }

    /// `ResourceSpans`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceSpans {
        /// `resource`.
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        /// `scope_spans`.
        #[prost(message, repeated, tag = "2")]
        pub scope_spans: Vec<ScopeSpans>,
    }

    /// `Resource`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Resource {
        /// `attributes`.
        #[prost(message, repeated, tag = "1")]
        pub attributes: Vec<KeyValue>,
    }

    /// `ScopeSpans`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeSpans {
        /// `spans`.
        #[prost(message, repeated, tag = "2")]
        pub spans: Vec<Span>,
    }

    /// `Span`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Span {
        /// `trace_id`.
        #[prost(bytes = "vec", tag = "1")]
        pub trace_id: Vec<u8>,
        /// `span_id`.
        #[prost(bytes = "vec", tag = "2")]
        pub span_id: Vec<u8>,
        /// `parent_span_id`.
        #[prost(bytes = "vec", tag = "4")]
        pub parent_span_id: Vec<u8>,
        /// `name`.
        #[prost(string, tag = "5")]
        pub name: String,
        /// `start_time_unix_nano`.
        #[prost(fixed64, tag = "7")]
        pub start_time_unix_nano: u64,
        /// `end_time_unix_nano`.
        #[prost(fixed64, tag = "8")]
        pub end_time_unix_nano: u64,
        /// `attributes`.
        #[prost(message, repeated, tag = "9")]
        pub attributes: Vec<KeyValue>,
        /// `events`.
        #[prost(message, repeated, tag = "11")]
        pub events: Vec<Event>,
        /// `status`.
        #[prost(message, optional, tag = "15")]
        pub status: Option<Status>,
    }

    /// `Span.Event`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Event {
        /// `time_unix_nano`.
        #[prost(fixed64, tag = "1")]
        pub time_unix_nano: u64,
        /// `name`.
        #[prost(string, tag = "2")]
        pub name: String,
        /// `attributes`.
        #[prost(message, repeated, tag = "3")]
        pub attributes: Vec<KeyValue>,
    }

    /// `Status`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Status {
        /// `message`.
        #[prost(string, tag = "2")]
        pub message: String,
        /// `code` (0 unset, 1 ok, 2 error).
        #[prost(int32, tag = "3")]
        pub code: i32,
    }

    /// `KeyValue`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValue {
        /// `key`.
        #[prost(string, tag = "1")]
        pub key: String,
        /// `value`.
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }

    /// `AnyValue` (its scalar members; arrays, maps and bytes are skipped).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AnyValue {
        /// The value.
        #[prost(oneof = "any_value::Value", tags = "1, 2, 3, 4")]
        pub value: Option<any_value::Value>,
    }

    /// `AnyValue`'s members.
    pub mod any_value {
        /// A scalar value.
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            /// `string_value`.
            #[prost(string, tag = "1")]
            StringValue(String),
            /// `bool_value`.
            #[prost(bool, tag = "2")]
            BoolValue(bool),
            /// `int_value`.
            #[prost(int64, tag = "3")]
            IntValue(i64),
            /// `double_value`.
            #[prost(double, tag = "4")]
            DoubleValue(f64),
        }
    }

    /// `ExportTraceServiceResponse`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportTraceServiceResponse {
        /// `partial_success`.
        #[prost(message, optional, tag = "1")]
        pub partial_success: Option<PartialSuccess>,
    }

    /// `ExportTracePartialSuccess`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PartialSuccess {
        /// `rejected_spans`.
        #[prost(int64, tag = "1")]
        pub rejected_spans: i64,
        /// `error_message`.
        #[prost(string, tag = "2")]
        pub error_message: String,
    }
}

/// OTLP/JSON's shapes (lowerCamelCase; unknown fields ignored).
mod json {
    use super::{Deserialize, Deserializer};

    /// A 64-bit integer sent as a JSON number or a decimal string (both are allowed).
    #[derive(Debug, Default, Clone, Copy)]
    pub struct Int64(pub i64);

    impl<'de> Deserialize<'de> for Int64 {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Int64, D::Error> {
            #[derive(Deserialize)]
            #[serde(untagged)]
            enum Either {
                Signed(i64),
                Unsigned(u64),
                Text(String),
            }
            match Either::deserialize(d)? {
                Either::Signed(i) => Ok(Int64(i)),
                Either::Unsigned(u) => Ok(Int64(u as i64)),
                Either::Text(t) => t
                    .parse::<i64>()
                    .or_else(|_| t.parse::<u64>().map(|u| u as i64))
                    .map(Int64)
                    .map_err(|_| serde::de::Error::custom(format!("{t:?} is not an integer"))),
            }
        }
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Request {
        #[serde(default)]
        pub resource_spans: Vec<ResourceSpans>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ResourceSpans {
        #[serde(default)]
        pub resource: Option<Resource>,
        #[serde(default)]
        pub scope_spans: Vec<ScopeSpans>,
    }

    #[derive(Deserialize)]
    pub struct Resource {
        #[serde(default)]
        pub attributes: Vec<KeyValue>,
    }

    #[derive(Deserialize)]
    pub struct ScopeSpans {
        #[serde(default)]
        pub spans: Vec<Span>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Span {
        #[serde(default)]
        pub trace_id: String,
        #[serde(default)]
        pub span_id: String,
        #[serde(default)]
        pub parent_span_id: String,
        #[serde(default)]
        pub name: String,
        #[serde(default)]
        pub start_time_unix_nano: Int64,
        #[serde(default)]
        pub end_time_unix_nano: Int64,
        #[serde(default)]
        pub attributes: Vec<KeyValue>,
        #[serde(default)]
        pub events: Vec<Event>,
        #[serde(default)]
        pub status: Option<Status>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Event {
        #[serde(default)]
        pub time_unix_nano: Int64,
        #[serde(default)]
        pub name: String,
        #[serde(default)]
        pub attributes: Vec<KeyValue>,
    }

    #[derive(Deserialize)]
    pub struct Status {
        #[serde(default)]
        pub code: Int64,
    }

    #[derive(Deserialize)]
    pub struct KeyValue {
        pub key: String,
        #[serde(default)]
        pub value: Option<AnyValue>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct AnyValue {
        #[serde(default)]
        pub string_value: Option<String>,
        #[serde(default)]
        pub bool_value: Option<bool>,
        #[serde(default)]
        pub int_value: Option<Int64>,
        #[serde(default)]
        pub double_value: Option<f64>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, v: pb::any_value::Value) -> pb::KeyValue {
        pb::KeyValue { key: key.into(), value: Some(pb::AnyValue { value: Some(v) }) }
    }

    fn request() -> pb::ExportTraceServiceRequest {
        use pb::any_value::Value::*;
        let span = pb::Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            parent_span_id: vec![],
            name: "checkout".into(),
            start_time_unix_nano: 1_000_000_000,
            end_time_unix_nano: 1_250_000_000,
            attributes: vec![kv("order.total", DoubleValue(12.5)), kv("items", IntValue(3))],
            events: vec![pb::Event {
                time_unix_nano: 1_100_000_000,
                name: "feature_flag.evaluation".into(),
                attributes: vec![
                    kv("feature_flag.key", StringValue("checkout".into())),
                    kv("feature_flag.result.variant", StringValue("on".into())),
                ],
            }],
            status: Some(pb::Status { message: String::new(), code: 2 }),
        };
        pb::ExportTraceServiceRequest {
            resource_spans: vec![pb::ResourceSpans {
                resource: Some(pb::Resource {
                    attributes: vec![kv("service.name", StringValue("shop".into()))],
                }),
                scope_spans: vec![pb::ScopeSpans { spans: vec![span] }],
            }],
        }
    }

    fn check(spans: &[Span]) {
        assert_eq!(spans.len(), 1);
        let s = &spans[0];
        assert_eq!((s.service(), s.name.as_str(), s.error), (Some("shop"), "checkout", true));
        assert_eq!(s.duration_ms(), 250.0);
        assert_eq!(attribute(&s.attributes, "order.total"), Some(&Scalar::Double(12.5)));
        assert_eq!(attribute(&s.attributes, "items").and_then(Scalar::as_f64), Some(3.0));
        assert_eq!(s.events[0].name, "feature_flag.evaluation");
        assert_eq!(s.events[0].time_unix_nano, 1_100_000_000);
        assert_eq!(
            attribute(&s.events[0].attributes, "feature_flag.result.variant"),
            Some(&Scalar::Str("on".into()))
        );
        assert_eq!((s.trace_id.len(), s.span_id.len(), s.parent_span_id.len()), (16, 8, 0));
    }

    #[test]
    fn protobuf_plain_and_gzip_decode_to_the_same_spans() {
        use std::io::Write as _;
        let bytes = request().encode_to_vec();
        let (enc, spans) = decode(&bytes, Some("application/x-protobuf"), None).unwrap();
        assert_eq!(enc, Encoding::Protobuf);
        check(&spans);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes).unwrap();
        let zipped = gz.finish().unwrap();
        let (_, again) = decode(&zipped, Some("application/x-protobuf"), Some("gzip")).unwrap();
        assert_eq!(again, spans);
    }

    #[test]
    fn json_decodes_with_hex_ids_and_string_integers() {
        let body = serde_json::json!({"resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
            "scopeSpans": [{"scope": {"name": "x"}, "spans": [{
                "traceId": "01010101010101010101010101010101", "spanId": "0202020202020202",
                "parentSpanId": "", "name": "checkout", "kind": 2,
                "startTimeUnixNano": "1000000000", "endTimeUnixNano": 1250000000u64,
                "attributes": [{"key": "order.total", "value": {"doubleValue": 12.5}},
                               {"key": "items", "value": {"intValue": "3"}},
                               {"key": "tags", "value": {"arrayValue": {"values": []}}}],
                "events": [{"timeUnixNano": "1100000000", "name": "feature_flag.evaluation",
                    "attributes": [{"key": "feature_flag.key", "value": {"stringValue": "checkout"}},
                        {"key": "feature_flag.result.variant", "value": {"stringValue": "on"}}]}],
                "status": {"code": 2, "message": "boom"}, "futureField": true}]}]}]});
        let (enc, spans) =
            decode(body.to_string().as_bytes(), Some("application/json; charset=utf-8"), None)
                .unwrap();
        assert_eq!(enc, Encoding::Json);
        check(&spans);
    }

    #[test]
    fn bad_requests_are_named() {
        assert_eq!(decode(b"", Some("text/plain"), None), Err(DecodeError::UnsupportedType));
        assert_eq!(decode(b"", None, None), Err(DecodeError::UnsupportedType));
        assert!(matches!(
            decode(b"", Some("application/json"), Some("br")),
            Err(DecodeError::UnsupportedEncoding(_))
        ));
        assert!(matches!(
            decode(b"not gzip", Some("application/json"), Some("gzip")),
            Err(DecodeError::Gzip(_))
        ));
        assert!(matches!(
            decode(b"\xff\xff\xff", Some("application/x-protobuf"), None),
            Err(DecodeError::Malformed(_))
        ));
        let bad_id = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#;
        let err = decode(bad_id.as_bytes(), Some("application/json"), None).unwrap_err();
        assert!(err.to_string().contains("traceId"), "{err}");
        // Empty requests are valid and hold nothing.
        assert_eq!(decode(b"{}", Some("application/json"), None).unwrap().1, vec![]);
        assert_eq!(decode(b"", Some("application/x-protobuf"), None).unwrap().1, vec![]);
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..=(MAX_DECODED_BYTES >> 20) {
            gz.write_all(&zeros).unwrap();
        }
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 200_000);
        let err = decode(&bomb, Some("application/x-protobuf"), Some("gzip")).unwrap_err();
        assert!(err.to_string().contains("more than 32 MiB"), "{err}");
    }

    proptest::proptest! {
        /// No body, however malformed, makes decoding panic: arbitrary bytes in every encoding,
        /// and valid requests with bytes flipped, cut short or gzip-wrapped.
        #[test]
        fn no_input_panics(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1024),
            flips in proptest::collection::vec((0usize..4096, proptest::prelude::any::<u8>()), 0..8),
            cut in 0usize..4096,
            kind in 0u8..4,
        ) {
            use std::io::Write as _;
            let types = [Some("application/x-protobuf"), Some("application/json"), Some("text/plain"), None];
            for ct in types {
                for enc in [None, Some("gzip"), Some("br")] {
                    let _ = decode(&bytes, ct, enc);
                }
            }
            let mut valid = match kind {
                0 | 1 => request().encode_to_vec(),
                _ => serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
                    "traceId": "0101", "spanId": "02", "startTimeUnixNano": "18446744073709551615",
                    "events": [{"name": "feature_flag", "timeUnixNano": -1}],
                    "attributes": [{"key": "k", "value": {"intValue": "9223372036854775808"}}]}]}]}]})
                    .to_string()
                    .into_bytes(),
            };
            for (at, b) in &flips {
                if !valid.is_empty() {
                    let i = at % valid.len();
                    valid[i] ^= b;
                }
            }
            valid.truncate(cut.max(1).min(valid.len()));
            let ct = if kind < 2 { "application/x-protobuf" } else { "application/json" };
            let _ = decode(&valid, Some(ct), None);
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&valid).unwrap();
            let _ = decode(&gz.finish().unwrap(), Some(ct), Some("gzip"));
        }
    }

    #[test]
    fn answers_are_standard() {
        let ok = success(Encoding::Protobuf, 0, "");
        assert!(ok.is_empty(), "an empty ExportTraceServiceResponse");
        let warn = success(Encoding::Protobuf, 0, "3 spans unattributed");
        let back = pb::ExportTraceServiceResponse::decode(&warn[..]).unwrap();
        assert_eq!(back.partial_success.unwrap().error_message, "3 spans unattributed");
        let json: serde_json::Value =
            serde_json::from_slice(&success(Encoding::Json, 2, "bad")).unwrap();
        assert_eq!(json["partialSuccess"]["rejectedSpans"], "2");
        assert_eq!(success(Encoding::Json, 0, ""), b"{}");
    }
}
