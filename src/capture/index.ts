// Public API of the capture module: pcap writing, pcap/pcapng reading, TCP reassembly.
// It works on bytes and imports nothing from the rest of the project.
//
// Writing: PcapWriter writes classic pcap (LE, microseconds, Ethernet, snaplen 262144).
//   flow() synthesizes a TCP connection (handshake, one PSH+ACK segment run per message,
//   FIN exchange); writePacket() + buildTcpFrame() write arbitrary segments for tests.
// Reading: readCapture (buffer), readCaptureFile (chunked sync reads), readCaptureStream
//   (async chunks) yield one CapturedPacket per TCP frame. Frames are numbered as
//   Wireshark numbers them (every packet record, TCP or not); other frames are not
//   yielded but counted in `stats.skipped` by reason and passed to `onSkip`. IP fragments
//   are not reassembled: they are skipped as 'ip-fragment'. Payloads are views into the
//   input; `wireLen` > payload.length marks a frame cut by the snaplen.
// Errors: bad input throws CaptureError { code, offset } and nothing else; packets before
//   the fault are yielded first. A file cut at a record boundary reads cleanly.
// Reassembly: TcpReassembler turns packets into per-connection, per-direction in-order
//   data, gap and end events; the rules (roles, when a hole becomes a gap, memory bound)
//   are described in reassembler.ts and tcp-stream.ts.

export { CaptureError, isCaptureError, LINKTYPE, TCP_FLAGS } from './types.js';
export type { CapturedPacket, CaptureErrorCode, SkipReason, TcpEndpoint } from './types.js';

export { PcapWriter, PCAP_SNAPLEN } from './pcap-writer.js';
export type { FlowOptions, FlowSide, PcapFlow, PcapSink, PcapWriterOptions } from './pcap-writer.js';

export { buildTcpFrame, tcpChecksum, MAX_TCP_PAYLOAD } from './frame-builder.js';
export type { TcpFrameSpec } from './frame-builder.js';

export { readCapture, readCaptureFile, readCaptureStream } from './reader.js';
export type { AsyncCaptureReader, CaptureReader, ReadOptions } from './reader.js';
export type { CaptureStats } from './decode.js';
export { MAX_RECORD } from './pcap-classic.js';

export { reassemble, TcpReassembler } from './reassembler.js';
export type {
  Direction, EndReason, ReassemblerOptions, ReassemblyHandler, ReassemblyStats, TcpConnection, TcpSegment,
} from './reassembler.js';
