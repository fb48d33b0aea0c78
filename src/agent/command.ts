// `cri-mesos agent` and `cri-mesos agent pods` on the command line (commander).
import { Command, Option } from 'commander';
import { defaultConfig, parseDuration } from '../config.js';
import { createLogger } from '../log.js';
import { AGENT_DEFAULT_POD_LOGS_DIR, AGENT_DEFAULT_ROOT } from '../paths.js';
import { DEFAULT_CONTAINER_LOG_MAX_FILES, DEFAULT_CONTAINER_LOG_MAX_SIZE, DEFAULT_STATUS_ADDRESS } from './flag-defaults.js';

interface AgentFlags {
  manifests: string;
  runtimeEndpoint: string;
  root: string;
  statusAddress: string;
  nodeName?: string;
  nodeIp?: string;
  podLogsDir: string;
  cgroupRoot: string;
  resolvConf: string;
  containerLogMaxSize: string;
  containerLogMaxFiles: string;
  containerLogMonitorInterval: string;
  eventedPleg?: boolean;
  logLevel: string;
  logFormat: 'text' | 'json';
  restartBackoffInitial?: string;
  restartBackoffMax?: string;
  fileCheckFrequency: string;
}

export function registerAgentCommand(program: Command): void {
  const agent = program
    .command('agent')
    .description("a standalone node agent (the kubelet's static pods): runs the Pod manifests of a directory over the CRI")
    .addHelpText('after', '\n`cri-mesos agent --manifests DIR [options]` is `cri-mesos agent run ...`: see `cri-mesos agent run --help`.');
  agent
    .command('run', { isDefault: true })
    .description("run the Pod manifests of a directory (the default: `cri-mesos agent --manifests DIR`)")
    .requiredOption('--manifests <dir>', 'directory of Pod manifests (YAML or JSON, one pod per file), watched')
    .option('--runtime-endpoint <unix://path>', 'the CRI runtime socket', `unix://${defaultConfig().socket}`)
    .option('--root <dir>', "the agent's state: pod dirs and volumes", AGENT_DEFAULT_ROOT)
    .option('--status-address <host:port>', 'serve GET /pods and /healthz here', DEFAULT_STATUS_ADDRESS)
    .option('--node-name <name>', "the node's name: static pods are named <name>-<node> (default: the host name)")
    .option('--node-ip <ip>', "the node's IP: host-network pods' IP, where their probes go (default: the first non-loopback IPv4)")
    .option('--pod-logs-dir <dir>', "where containers' logs go: <dir>/<ns>_<pod>_<uid>/<container>/<n>.log", AGENT_DEFAULT_POD_LOGS_DIR)
    .option('--cgroup-root <path>', 'cgroup under which the kubepods hierarchy is (the kubelet\'s --cgroup-root)', '/')
    .option('--resolv-conf <path>', 'the resolver config pods get ("" for none)', '/etc/resolv.conf')
    .option('--container-log-max-size <quantity>', 'rotate a container log at this size', DEFAULT_CONTAINER_LOG_MAX_SIZE)
    .option('--container-log-max-files <n>', 'keep at most this many log files per container', String(DEFAULT_CONTAINER_LOG_MAX_FILES))
    .option('--container-log-monitor-interval <duration>', 'how often logs are checked for rotation', '10s')
    .option('--evented-pleg', "use the runtime's GetContainerEvents (relist every 300 s; back to 1 s if the stream fails)")
    .option('--log-level <level>', 'error|warn|info|debug', 'info')
    .addOption(new Option('--log-format <format>', 'log format').choices(['text', 'json']).default('text'))
    .option('--file-check-frequency <duration>', 'rescan the manifest dir this often (besides inotify)', '20s')
    .addOption(new Option('--restart-backoff-initial <duration>', 'tests only: first restart back-off (the kubelet: 10s)').hideHelp())
    .addOption(new Option('--restart-backoff-max <duration>', 'tests only: longest restart back-off (the kubelet: 5m)').hideHelp())
    .action(async (opts: AgentFlags) => {
      for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
      const log = createLogger({ level: opts.logLevel, format: opts.logFormat });
      const { Agent } = await import('./agent.js');
      let running: Awaited<ReturnType<typeof Agent.start>>;
      try {
        running = await Agent.start(
          {
            manifests: opts.manifests,
            runtimeEndpoint: opts.runtimeEndpoint,
            root: opts.root,
            statusAddress: opts.statusAddress,
            ...(opts.nodeName ? { nodeName: opts.nodeName } : {}),
            ...(opts.nodeIp ? { nodeIP: opts.nodeIp } : {}),
            podLogsDir: opts.podLogsDir,
            cgroupRoot: opts.cgroupRoot,
            resolvConf: opts.resolvConf,
            containerLogMaxSize: opts.containerLogMaxSize,
            containerLogMaxFiles: Number(opts.containerLogMaxFiles),
            containerLogMonitorIntervalMs: parseDuration(opts.containerLogMonitorInterval, '--container-log-monitor-interval'),
            eventedPleg: opts.eventedPleg === true,
            fileCheckFrequencyMs: parseDuration(opts.fileCheckFrequency, '--file-check-frequency'),
            ...(opts.restartBackoffInitial ? { backoffInitialMs: parseDuration(opts.restartBackoffInitial, '--restart-backoff-initial') } : {}),
            ...(opts.restartBackoffMax ? { backoffMaxMs: parseDuration(opts.restartBackoffMax, '--restart-backoff-max') } : {}),
          },
          log,
        );
      } catch (err) {
        log.error('cannot start the agent', { error: (err as Error).message });
        process.exitCode = 1;
        return;
      }
      const shutdown = (signal: string) => {
        log.info('agent stopping; pods keep running', { signal });
        void running.stop().then(() => process.exit(0));
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
    });

  agent
    .command('pods')
    .description("print the agent's pods as a table")
    .option('--status-address <host:port>', "the agent's status address", DEFAULT_STATUS_ADDRESS)
    .option('-o, --output <format>', 'table or json', 'table')
    .action(async (opts: { statusAddress: string; output: string }) => {
      const { fetchPods, podsTable } = await import('./pods-table.js');
      try {
        const { pods, manifests } = await fetchPods(opts.statusAddress);
        if (opts.output === 'json') console.log(JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: {}, items: pods }, null, 2));
        else process.stdout.write(pods.length || manifests.length ? podsTable(pods, manifests) : 'No pods.\n');
      } catch (err) {
        console.error(`cannot reach the agent at ${opts.statusAddress}: ${(err as Error).message}`);
        process.exitCode = 1;
      }
    });
}
