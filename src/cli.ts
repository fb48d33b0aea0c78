#!/usr/bin/env node
// cri-mesos: the daemon (default command) and a few operator subcommands.
import { Command, Option } from 'commander';
import { imagesDir } from './paths.js';
import { defaultConfig, loadConfigWithSources, renderConfig, type DaemonConfig, type LoadedConfig } from './config.js';
import { createLogger } from './log.js';
import { SystemdNotifier, takeNotifyEnv } from './systemd.js';
import { RUNTIME_VERSION } from './version.js';
import { registerAgentCommand } from './agent/command.js';

const program = new Command();
program.name('cri-mesos').description('A CRI runtime with Apache Mesos containerizer semantics').version(RUNTIME_VERSION);

function withConfigFlags(cmd: Command): Command {
  const d = defaultConfig();
  return cmd
    .option('--config <path>', 'TOML config file (default /etc/cri-mesos/config.toml if it exists)')
    .option('--config-dir <path>', "drop-ins merged over the config file in lexical order: every *.toml in it (default: config.d next to the config file, /etc/cri-mesos/config.d; '' for none)")
    .option('--socket <path>', `CRI socket (default ${d.socket})`)
    .option('--work-dir <path>', `persistent state (default ${d.workDir})`)
    .option('--runtime-dir <path>', `volatile state (default ${d.runtimeDir})`)
    .option('--cgroup-root <name>', `cgroup root under every hierarchy (default ${d.cgroupRoot})`)
    .option('--containerizers <list>', `comma-separated containerizers (default ${d.containerizers.join(',')})`)
    .option('--docker-host <unix://path>', `the Docker Engine's socket for the docker containerizer (default ${d.dockerHost})`)
    .option('--docker-mesos-image <image>', "executor mode A: this daemon runs in a docker container of IMAGE, and each docker-executor runs in one too (default: mode B, forked subprocesses)")
    .addOption(new Option('--launcher <kind>', `launcher (default ${d.launcher})`).choices(['linux', 'posix']))
    .option('--log-level <level>', `error|warn|info|debug (default ${d.logLevel})`)
    .addOption(new Option('--log-format <format>', `log format (default ${d.logFormat})`).choices(['text', 'json']))
    .option('--shm-size <bytes>', `size of a pod's /dev/shm (default ${d.shmSize})`)
    .option('--launch-timeout-seconds <n>', `how long container setup may take (default ${d.launchTimeoutSeconds})`)
    .option('--pod-pool-size <n>', `pause helpers kept ready for RunPodSandbox, 0 for none (default ${d.podPoolSize})`)
    .option('--cgroup-favor-dynmods <bool>', `host-wide: cgroup moves skip the RCU grace-period wait (default ${d.cgroupFavorDynmods})`)
    .option('--cri-front <bool>', `serve the socket through the HTTP/2 front that lets pre-1.57 grpc-go clients in (default ${d.criFront})`)
    .option('--stream-server-address <addr>', `address of the Exec/Attach/PortForward server (default ${d.streamServerAddress})`)
    .option('--stream-server-port <port>', `its port, 0 for a free one (default ${d.streamServerPort})`)
    .option('--stream-idle-timeout <duration>', `close a stream idle this long (default ${d.streamIdleTimeout})`)
    .option('--stream-tls-cert <path>', 'PEM certificate: serve streams over TLS (with --stream-tls-key)')
    .option('--stream-tls-key <path>', 'PEM key of --stream-tls-cert')
    .option('--cni-conf-dir <path>', `CNI network configs, watched (default ${d.cniConfDir})`)
    .option('--cni-bin-dirs <list>', `comma-separated CNI plugin dirs (default ${d.cniBinDirs.join(',')})`)
    .option('--cni-conf-template <path>', 'conflist template ({{.PodCIDR}}, {{.PodCIDRRanges}}, {{.Routes}}), rendered into the conf dir while no valid config is loaded and a pod CIDR is set')
    .option('--seccomp-default <bool>', `RuntimeDefault seccomp for containers that name no profile (default ${d.seccompDefault})`)
    .option('--pre-launch-hook <path>', 'executable run before every pod and container launch: config JSON on stdin, env and labels to add on stdout')
    .option('--pre-launch-hook-timeout <seconds>', `how long the pre-launch hook may run before the create fails (default ${d.preLaunchHookTimeout})`)
    .option('--metrics-address <host:port>', "serve Prometheus /metrics and /healthz there, e.g. 127.0.0.1:9090 (default '': off)");
}

/** Options of a command that are not config flags. */
const NOT_CONFIG = new Set(['config', 'configDir', 'json', 'import']);

function loadedFrom(opts: Record<string, unknown>): LoadedConfig {
  const flags = Object.fromEntries(Object.entries(opts).filter(([k]) => !NOT_CONFIG.has(k)));
  return loadConfigWithSources(opts.config as string | undefined, flags as Partial<Record<keyof DaemonConfig, unknown>>, opts.configDir as string | undefined);
}

/** The config, or undefined with its error printed and exit status 2: a bad config is the operator's to fix, a message and no stack trace. */
function loadedOrExit(opts: Record<string, unknown>): LoadedConfig | undefined {
  try {
    return loadedFrom(opts);
  } catch (err) {
    console.error(`cri-mesos: ${(err as Error).message}`);
    process.exitCode = 2;
    return undefined;
  }
}

function configFrom(opts: Record<string, unknown>): DaemonConfig {
  return loadedFrom(opts).config;
}

withConfigFlags(program.command('daemon', { isDefault: true }).description('serve the CRI on a unix socket'))
  .option('--import <path...>', 'import these images (OCI layouts or archives, as `images import`) into the store before serving; already imported ones cost a digest check')
  .action(runDaemon);

async function runDaemon(opts: Record<string, unknown>): Promise<void> {
  // First: nothing the daemon starts may inherit systemd's notification socket.
  const notify = takeNotifyEnv();
  const config = loadedOrExit(opts)?.config;
  if (!config) return;
  // Whoever reads our output may go away (a closed pipe, a dead terminal): that must never take
  // the daemon, and with it the CRI socket, down. Log lines are simply lost then.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  const { Daemon } = await import('./daemon.js');
  const notifier = notify ? new SystemdNotifier(notify.socket, log) : undefined;
  let daemon: Awaited<ReturnType<typeof Daemon.start>>;
  try {
    if (config.preLaunchHook) (await import('./cri/runtime/pre-launch-hook.js')).checkPreLaunchHook(config.preLaunchHook);
    for (const path of (opts.import as string[] | undefined) ?? []) {
      const { ImageStore } = await import('./images/store.js');
      const { importImage } = await import('./images/import.js');
      for (const img of await importImage(new ImageStore(imagesDir(config.workDir)), path)) log.info('image imported', { path, image: img.id, tags: img.repoTags.join(',') });
    }
    notifier?.notify({ STATUS: 'recovering' });
    daemon = await Daemon.start(config, log);
  } catch (err) {
    log.error('cannot start', { error: (err as Error).message });
    notifier?.notify({ STATUS: `cannot start: ${(err as Error).message}` });
    process.exitCode = 1;
    // What the start had opened (listeners, watchers) would keep a daemon that serves nothing
    // alive: leave, once the log line had its chance to reach a pipe.
    setTimeout(() => process.exit(1), 200).unref();
    return;
  }
  // READY=1 once recovery is done (requests wait for it) and the socket is bound (Daemon.start):
  // systemd starts what comes After= us, the kubelet, only then. A failed recovery serves only its
  // error: no READY, so the start times out and Restart= applies.
  let stopping = false;
  daemon.ready.then(
    () => {
      if (!notifier || stopping) return;
      notifier.ready(`serving CRI on ${config.socket}`);
      if (notify?.watchdogUsec) notifier.startWatchdog(notify.watchdogUsec, () => daemon.statusProbe());
    },
    (err: unknown) => notifier?.notify({ STATUS: `recovery failed, serving errors only: ${String(err)}` }),
  );
  const shutdown = (signal: string) => {
    stopping = true;
    notifier?.stopping(`stopping on ${signal}; containers keep running`);
    log.info('stopping; containers keep running', { signal });
    void daemon.stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

withConfigFlags(program.command('config').description('print the effective configuration and where each value came from'))
  .option('--json', 'as JSON: {config, sources, files}')
  .action((opts) => {
    const loaded = loadedOrExit(opts);
    if (!loaded) return;
    if (opts.json) console.log(JSON.stringify(loaded, null, 2));
    else process.stdout.write(`# files: ${loaded.files.length ? loaded.files.join(', ') : 'none (defaults and flags only)'}\n${renderConfig(loaded)}`);
  });

const images = program.command('images').description('manage the local image store');
withConfigFlags(images.command('import <path>').description('import an OCI image layout (dir or tar) or a docker-archive tar')).action(
  async (path: string, opts) => {
    const config = configFrom(opts);
    const { ImageStore } = await import('./images/store.js');
    const { importImage } = await import('./images/import.js');
    const store = new ImageStore(imagesDir(config.workDir));
    try {
      for (const img of await importImage(store, path)) console.log(`${img.id} ${img.repoTags.join(' ')}`);
    } catch (err) {
      console.error(`import failed: ${(err as Error).message}`);
      process.exitCode = 1;
    }
  },
);

program
  .command('docker-executor')
  .description('(internal) run and supervise one docker container of a docker pod: started by the daemon')
  .requiredOption('--docker-host <unix://path>', 'the Docker Engine socket')
  .requiredOption('--container <id>', 'the docker container id')
  .requiredOption('--runtime-dir <path>', "the CRI container's runtime dir")
  .option('--log-path <path>', 'the CRI log file', '')
  .option('--executor-log <path>', 'append diagnostics to this file instead of stderr (mode A: the executor in a container)')
  .action(async (opts: { dockerHost: string; container: string; runtimeDir: string; logPath: string; executorLog?: string }) => {
    const { runExecutor } = await import('./containerizer/docker/executor.js');
    try {
      process.exit(
        await runExecutor({ dockerHost: opts.dockerHost, container: opts.container, runtimeDir: opts.runtimeDir, logPath: opts.logPath, ...(opts.executorLog ? { executorLog: opts.executorLog } : {}) }),
      );
    } catch (err) {
      const text = `docker-executor: ${(err as Error).stack ?? String(err)}\n`;
      if (opts.executorLog) (await import('node:fs')).appendFileSync(opts.executorLog, text);
      else process.stderr.write(text);
      process.exit(1);
    }
  });

registerAgentCommand(program);

// Not a top-level await: the bundle is a CommonJS script (hack/bundle.ts), which has none.
program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
