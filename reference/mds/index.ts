// Public entry point of the reference MDS: a metadata server for one MDT whose
// namespace lives in SQLite and whose files are striped (RAID0) over OSTs it reaches
// as a client. See reference/README.md for the wire conventions it follows.
export { MdsServer, MDT_CONNECT_FLAGS } from './server.js'
export type { MdsOptions, OstAddress } from './server.js'
