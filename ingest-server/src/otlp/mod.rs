//! OpenTelemetry logs over OTLP/HTTP, decoded: the `ExportLogsServiceRequest` messages in
//! protobuf (`proto.rs`, hand-written prost structs, no build script) and OTLP/JSON
//! (`json.rs`), counted before they are decoded (`count.rs`: log records, groups and
//! attributes against their limits, allocating nothing), and the mapping of a `LogRecord`
//! to a record (`map.rs`). The endpoint, `POST /v1/logs`, is `api/otlp.rs`.

pub(crate) mod count;
pub(crate) mod json;
pub(crate) mod map;
pub(crate) mod proto;
