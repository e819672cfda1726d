// Public entry point of the reference Lustre client: LustreClient (namespace operations
// on the MDS, striped I/O on the OSTs, over LNet/socklnd with no kernel mount), and the
// pure pieces the tests and the CLI use (RAID0 mapping, lov_user_md packing, lfs text).
export { LustreClient } from './client.js'
export type { StatResult, StatfsResult, CreateOptions } from './client.js'
export type { ClientOptions } from './connect.js'
export { DEFAULT_BRW_SIZE, MAX_BRW_SIZE, localNidFor } from './connect.js'
export { LustreFile } from './file.js'
export {
  stripeMap, objectSizeFor, fileSizeFromObject, packLovUserMd, layoutFromMd, formatGetstripe, patternString, checkStripeOptions,
  LOV_MIN_STRIPE_SIZE, LOV_MAX_STRIPE_COUNT,
} from './layout.js'
export type { Layout, LayoutObject, StripeOptions, StripePiece } from './layout.js'
export { planBrw, runLimited } from './lov.js'
export type { BrwPlan, Segment } from './lov.js'
export { parseDirPage, parseDirPages, typeOfMode, LU_PAGE_SIZE, MDS_DIR_END_OFF } from './dirpage.js'
export type { DirEntry, DirPage } from './dirpage.js'
export { ClientError, fsError } from './errors.js'
export type { ClientErrorCode } from './errors.js'
export type { Fid } from './mdc.js'
export { LustreRpcError, E, errnoName } from '../common/index.js'
