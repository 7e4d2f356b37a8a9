//! The few OTLP messages `/v1/logs` reads and writes, written by hand from
//! `opentelemetry/proto/{collector/logs,logs,common,resource}/v1/*.proto` and
//! `google/rpc/status.proto` (field numbers and types as there; fields the server does not
//! use are left out, which protobuf decoding skips).
//!
//! The same structs read OTLP/JSON: field names in lowerCamelCase, 64-bit integers as
//! strings or numbers, enums as integers, trace and span ids as hex (`json.rs`).

use serde::Deserialize;

use super::json;

/// `opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ExportLogsServiceRequest {
    /// Logs grouped by the resource (the service) that produced them.
    #[prost(message, repeated, tag = "1")]
    #[serde(deserialize_with = "json::nullable")]
    pub resource_logs: Vec<ResourceLogs>,
}

/// `opentelemetry.proto.logs.v1.ResourceLogs`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ResourceLogs {
    /// The producer; `service.name` among its attributes names the service.
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    /// Logs grouped by instrumentation scope.
    #[prost(message, repeated, tag = "2")]
    #[serde(deserialize_with = "json::nullable")]
    pub scope_logs: Vec<ScopeLogs>,
}

/// `opentelemetry.proto.resource.v1.Resource`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Resource {
    /// `service.name`, `service.version`, `deployment.environment.name`, ...
    #[prost(message, repeated, tag = "1")]
    #[serde(deserialize_with = "json::nullable")]
    pub attributes: Vec<KeyValue>,
}

/// `opentelemetry.proto.logs.v1.ScopeLogs`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ScopeLogs {
    /// The instrumentation scope (for Python `logging`, the logger's name).
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    /// The records.
    #[prost(message, repeated, tag = "2")]
    #[serde(deserialize_with = "json::nullable")]
    pub log_records: Vec<LogRecord>,
}

/// `opentelemetry.proto.common.v1.InstrumentationScope`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct InstrumentationScope {
    /// The scope's name.
    #[prost(string, tag = "1")]
    #[serde(deserialize_with = "json::nullable")]
    pub name: String,
}

/// `opentelemetry.proto.logs.v1.LogRecord`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct LogRecord {
    /// When the event happened, in nanoseconds since the Unix epoch (0: unknown).
    #[prost(fixed64, tag = "1")]
    #[serde(deserialize_with = "json::uint64")]
    pub time_unix_nano: u64,
    /// When the pipeline first saw it (0: unknown).
    #[prost(fixed64, tag = "11")]
    #[serde(deserialize_with = "json::uint64")]
    pub observed_time_unix_nano: u64,
    /// `SeverityNumber`: 1-4 TRACE, 5-8 DEBUG, 9-12 INFO, 13-16 WARN, 17-20 ERROR,
    /// 21-24 FATAL; 0 unspecified.
    #[prost(int32, tag = "2")]
    #[serde(deserialize_with = "json::nullable")]
    pub severity_number: i32,
    /// The level as the source named it.
    #[prost(string, tag = "3")]
    #[serde(deserialize_with = "json::nullable")]
    pub severity_text: String,
    /// The message: usually a string, any `AnyValue` allowed.
    #[prost(message, optional, tag = "5")]
    pub body: Option<AnyValue>,
    /// Structured context.
    #[prost(message, repeated, tag = "6")]
    #[serde(deserialize_with = "json::nullable")]
    pub attributes: Vec<KeyValue>,
    /// 16 bytes, or empty.
    #[prost(bytes = "vec", tag = "9")]
    #[serde(deserialize_with = "json::hex_id")]
    pub trace_id: Vec<u8>,
    /// 8 bytes, or empty.
    #[prost(bytes = "vec", tag = "10")]
    #[serde(deserialize_with = "json::hex_id")]
    pub span_id: Vec<u8>,
    /// The event's name, for records that are events.
    #[prost(string, tag = "12")]
    #[serde(deserialize_with = "json::nullable")]
    pub event_name: String,
}

/// `opentelemetry.proto.common.v1.KeyValue`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default)]
pub(crate) struct KeyValue {
    /// The attribute's name.
    #[prost(string, tag = "1")]
    #[serde(deserialize_with = "json::nullable")]
    pub key: String,
    /// Its value.
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

/// `opentelemetry.proto.common.v1.AnyValue`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(try_from = "json::AnyValueJson")]
pub(crate) struct AnyValue {
    /// Which kind of value; `None` is an empty value.
    #[prost(oneof = "AnyValueKind", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub value: Option<AnyValueKind>,
}

/// The `value` oneof of [`AnyValue`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub(crate) enum AnyValueKind {
    /// A string.
    #[prost(string, tag = "1")]
    String(String),
    /// A boolean.
    #[prost(bool, tag = "2")]
    Bool(bool),
    /// A signed integer.
    #[prost(int64, tag = "3")]
    Int(i64),
    /// A double.
    #[prost(double, tag = "4")]
    Double(f64),
    /// A list.
    #[prost(message, tag = "5")]
    Array(ArrayValue),
    /// A map.
    #[prost(message, tag = "6")]
    Kvlist(KeyValueList),
    /// Raw bytes.
    #[prost(bytes = "vec", tag = "7")]
    Bytes(Vec<u8>),
}

/// `opentelemetry.proto.common.v1.ArrayValue`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default)]
pub(crate) struct ArrayValue {
    /// The items.
    #[prost(message, repeated, tag = "1")]
    #[serde(deserialize_with = "json::nullable")]
    pub values: Vec<AnyValue>,
}

/// `opentelemetry.proto.common.v1.KeyValueList`.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default)]
pub(crate) struct KeyValueList {
    /// The entries.
    #[prost(message, repeated, tag = "1")]
    #[serde(deserialize_with = "json::nullable")]
    pub values: Vec<KeyValue>,
}

/// `opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ExportLogsServiceResponse {
    /// Set only when some records were rejected.
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<ExportLogsPartialSuccess>,
}

/// `opentelemetry.proto.collector.logs.v1.ExportLogsPartialSuccess`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ExportLogsPartialSuccess {
    /// How many records were rejected.
    #[prost(int64, tag = "1")]
    pub rejected_log_records: i64,
    /// Why, for the exporter's operator.
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// `google.rpc.Status`: the body of every error response (`details` left out).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Status {
    /// A `google.rpc.Code`.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// What was wrong and what to do.
    #[prost(string, tag = "2")]
    pub message: String,
}
