//! Synthetic LTTng traces: a CTF 1.8 (TSDL, [`tsdl`]) or CTF 2 (JSON text sequence, [`ctf2`])
//! metadata stream and valid CTF data packets in LTTng's layout ([`packet`]), for load
//! generation and tests. What a relay writes from them is a
//! trace babeltrace2 reads; [`write_trace_dir`] writes the same trace locally, as
//! `lttng create --output DIR` would lay it out.

pub mod ctf2;
pub mod packet;
pub mod tsdl;

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use trelay_proto::ctf::format::TraceFormat;
use trelay_proto::ctf::index::{encode_header, IndexVersion};

pub use packet::{Packet, StreamGenerator, SynthError};
pub use tsdl::{packetize, synthetic_tsdl, uuid_text, MetadataPacket, TsdlParams};

/// A synthetic trace: its metadata and the parameters of its streams.
#[derive(Debug, Clone)]
pub struct SynthTrace {
    /// Metadata parameters (the UUID is shared with every packet).
    pub params: TsdlParams,
    /// Packet size of every stream.
    pub packet_len: usize,
    /// The metadata's format (the data packets are the same in both).
    pub format: TraceFormat,
}

impl SynthTrace {
    /// A trace with random UUIDs, named `trace_name`, from `hostname`.
    pub fn new(hostname: &str, trace_name: &str, packet_len: usize) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        SynthTrace {
            params: TsdlParams {
                uuid: crate::random_uuid(),
                clock_uuid: crate::random_uuid(),
                hostname: hostname.to_owned(),
                trace_name: trace_name.to_owned(),
                clock_offset_s: now,
            },
            packet_len,
            format: TraceFormat::Ctf1_8,
        }
    }

    /// The same trace with its metadata in `format`.
    pub fn with_format(mut self, format: TraceFormat) -> Self {
        self.format = format;
        self
    }

    /// Another trace of the same host: a new trace UUID, the same clock (same clock UUID and
    /// offset), so readers can order the events of both traces on one time line.
    pub fn sibling(&self) -> Self {
        let mut t = self.clone();
        t.params.uuid = crate::random_uuid();
        t
    }

    /// The metadata of the trace, in the chunks a consumer sends: CTF 1.8 as packetized TSDL
    /// (4 KiB packets, zero padding), CTF 2 as its JSON text sequence cut into 4 KiB pieces
    /// without padding (cuts fall inside records, as LTTng's do).
    pub fn metadata(&self) -> Vec<MetadataPacket> {
        match self.format {
            TraceFormat::Ctf1_8 => {
                packetize(synthetic_tsdl(&self.params).as_bytes(), self.params.uuid)
            }
            TraceFormat::Ctf2 => ctf2::synthetic_ctf2(&self.params)
                .chunks(tsdl::METADATA_PACKET_LEN)
                .map(|c| MetadataPacket {
                    content: c.to_vec(),
                    padding: 0,
                })
                .collect(),
        }
    }

    /// A generator for stream instance `instance`.
    pub fn stream(&self, instance: u32) -> Result<StreamGenerator, SynthError> {
        StreamGenerator::new(self.params.uuid, instance, self.packet_len)
    }
}

/// Writes `trace` as a local LTTng trace directory: `dir/metadata`, `dir/channel0_<i>` for
/// `streams` streams of `packets` packets each, and `dir/index/channel0_<i>.idx` (v1.1).
/// Returns the number of events written.
pub fn write_trace_dir(
    trace: &SynthTrace,
    dir: &Path,
    streams: u32,
    packets: u64,
) -> io::Result<u64> {
    fs::create_dir_all(dir.join("index"))?;
    let mut meta = BufWriter::new(File::create(dir.join("metadata"))?);
    for p in trace.metadata() {
        meta.write_all(&p.content)?;
        meta.write_all(&vec![0; p.padding as usize])?;
    }
    meta.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    let mut events = 0u64;
    for s in 0..streams {
        let mut gen = trace
            .stream(s)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut data = BufWriter::new(File::create(dir.join(format!("channel0_{s}")))?);
        let mut idx = Vec::new();
        encode_header(IndexVersion::V1_1, &mut idx);
        let mut offset = 0u64;
        for _ in 0..packets {
            let p = gen.next_packet();
            data.write_all(p.content)?;
            data.write_all(&vec![0; p.padding as usize])?;
            let mut entry = p.index;
            entry.offset = offset;
            entry.encode(IndexVersion::V1_1, &mut idx);
            offset += entry.packet_size / 8;
            events += u64::from(gen.events_per_packet());
        }
        data.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        fs::write(dir.join("index").join(format!("channel0_{s}.idx")), &idx)?;
    }
    Ok(events)
}
