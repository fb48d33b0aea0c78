// Preloaded into a daemon (NODE_OPTIONS=--import=<this file>) by rpc-floor.ts: a CPU profile from
// start to exit, written to $CPU_PROFILE_DIR/daemon-<pid>.cpuprofile. Node 20 refuses --cpu-prof in
// NODE_OPTIONS, and the daemon runs through bin/cri-mesos. CPU_PROFILE_INTERVAL_US: the sampling
// interval (default 100 µs). A main-thread inspector session answers posts synchronously, so the
// profile is still taken in the exit handler.
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';

const session = new Session();
session.connect();
session.post('Profiler.enable');
session.post('Profiler.setSamplingInterval', { interval: Number(process.env.CPU_PROFILE_INTERVAL_US ?? 100) });
session.post('Profiler.start');
process.on('exit', () => {
  session.post('Profiler.stop', (err, r) => {
    if (!err) writeFileSync(`${process.env.CPU_PROFILE_DIR ?? '.'}/daemon-${process.pid}.cpuprofile`, JSON.stringify(r.profile));
  });
});
