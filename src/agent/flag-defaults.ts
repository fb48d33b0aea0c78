// The agent's flag defaults, apart from the modules that use them: `cri-mesos` registers the
// agent's commands at every start, and the daemon must not load the agent's modules (grpc
// client, log rotation, zlib) to do so.
export const DEFAULT_CONTAINER_LOG_MAX_SIZE = '10Mi';
export const DEFAULT_CONTAINER_LOG_MAX_FILES = 5;
export const DEFAULT_STATUS_ADDRESS = '127.0.0.1:10255';
