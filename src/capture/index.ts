// Public API of the capture module: pcap writing, pcap/pcapng reading, TCP reassembly.
// It works on bytes and imports nothing from the rest of the project.

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
