//! Prometheus remote write 1.0 on the wire: a snappy-compressed (block format, not framed)
//! protobuf `WriteRequest` (prometheus/prompb `remote.proto` and `types.proto`). Only the fields
//! anomaly reads are declared; protobuf skips the others (metadata, exemplars, histograms).
//! Label names and values are decoded as slices of the request's buffer (no copy per label).

use bytes::Bytes;
use prost::Message;

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`: UTF-8 by the protocol; checked where it is used.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(bytes = "bytes", tag = "1")]
    pub name: Bytes,
    #[prost(bytes = "bytes", tag = "2")]
    pub value: Bytes,
}

/// `prometheus.Sample`: a value at a time in milliseconds since the epoch.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// Why a body is not a remote write request.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WireError {
    #[error("the body is not snappy-compressed (block format): {0}")]
    Snappy(String),
    #[error("the body decompresses to {size} bytes, more than the {limit} allowed")]
    TooLarge { size: usize, limit: usize },
    #[error("the body is not a protobuf WriteRequest: {0}")]
    Protobuf(String),
}

/// Decompresses and decodes a remote write body; the decompressed size is checked from the
/// snappy header before anything is allocated for it.
pub fn decode(body: &[u8], max_decoded_bytes: usize) -> Result<WriteRequest, WireError> {
    let size = snap::raw::decompress_len(body).map_err(|err| WireError::Snappy(err.to_string()))?;
    if size > max_decoded_bytes {
        return Err(WireError::TooLarge {
            size,
            limit: max_decoded_bytes,
        });
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|err| WireError::Snappy(err.to_string()))?;
    WriteRequest::decode(Bytes::from(raw)).map_err(|err| WireError::Protobuf(err.to_string()))
}

/// Encodes and compresses a remote write body (what anomaly pushes its results with).
pub fn encode(request: &WriteRequest) -> Vec<u8> {
    let raw = request.encode_to_vec();
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .expect("snappy compresses any input under 4 GB")
}

impl Label {
    pub fn new(name: &str, value: &str) -> Self {
        Self {
            name: Bytes::copy_from_slice(name.as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> WriteRequest {
        WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label::new("__name__", "up"), Label::new("job", "node")],
                samples: vec![Sample {
                    value: 1.5,
                    timestamp: 1_700_000_000_000,
                }],
            }],
        }
    }

    #[test]
    fn a_request_survives_the_round_trip() {
        assert_eq!(decode(&encode(&request()), 1 << 20).unwrap(), request());
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        let raw = request().encode_to_vec();
        assert!(decode(&raw, 1 << 20).is_err(), "not compressed");
        assert!(matches!(decode(b"", 1 << 20), Err(WireError::Snappy(_))));
        let garbage = snap::raw::Encoder::new().compress_vec(&[0xff; 64]).unwrap();
        assert!(matches!(
            decode(&garbage, 1 << 20),
            Err(WireError::Protobuf(_))
        ));
        let big = snap::raw::Encoder::new()
            .compress_vec(&vec![0; 4096])
            .unwrap();
        assert_eq!(
            decode(&big, 1000),
            Err(WireError::TooLarge {
                size: 4096,
                limit: 1000
            })
        );
    }
}
