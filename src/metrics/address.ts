// The listen address of the metrics server (metrics_address), parsed once for the config check and the listener.
/** "host:port", "[v6]:port" or ":port" (every address) → host and port; throws naming the key. */
export function parseListenAddress(text: string, what = 'metrics_address'): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:/[\]]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`${what}: "${text}" is not host:port (e.g. 127.0.0.1:9090, [::1]:9090, :9090)`);
  return { host: m[1] ?? m[2] ?? '', port };
}
