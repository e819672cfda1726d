// Public entry point of the cluster launcher.
export { startCluster, startClusterProcesses, ostRanges } from './cluster.js'
export type { ClusterOptions, RunningCluster, ServerAddress } from './cluster.js'
