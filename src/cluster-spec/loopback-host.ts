/**
 * Whether `host` is a loopback address or name, judged on its text alone (the spec is validated
 * without the network): traffic to it never leaves the machine, so it needs no TLS by default.
 */
export function isLoopbackHost(host: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '::1' || host === 'localhost';
}
