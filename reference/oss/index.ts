// Public entry point of the reference OSS: an object storage server serving N OSTs
// (objects as files, OST_* handlers, bulk I/O) over LNet/socklnd TCP.
export { OssServer } from './server.js'
export type { OssOptions } from './server.js'
