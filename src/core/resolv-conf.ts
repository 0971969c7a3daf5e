// /etc/resolv.conf as the C library reads it (resolv.conf(5)): the name servers the system
// resolver asks, and how long it waits for each. Pure: the file's text in, the settings out.
import {literalFamily, normalizeAddress, type HostPort} from './grammar.js'

export const RESOLV_CONF = '/etc/resolv.conf'

/** glibc's MAXNS: later `nameserver` lines are ignored. */
export const MAX_NAMESERVERS = 3

export interface ResolvConf {
  /** At most MAX_NAMESERVERS, in file order; 127.0.0.1 when the file names none (as glibc). */
  readonly servers: HostPort[]
  /** `options timeout:N` in ms (1–30 s), if given. */
  readonly timeoutMs?: number
  /** `options attempts:N` (1–5), if given. */
  readonly attempts?: number
}

/** The default when the file is missing or names no server (glibc: the local host). */
export const LOCAL_NAMESERVER: HostPort = {address: '127.0.0.1', port: 53}

/** `key:N` with N a decimal integer, clamped to [min, max] as glibc does; otherwise undefined. */
function option(word: string, key: string, min: number, max: number): number | undefined {
  const match = new RegExp(`^${key}:(\\d+)$`).exec(word)
  return match ? Math.min(max, Math.max(min, Number(match[1]))) : undefined
}

/**
 * `nameserver ADDR` lines (an IPv4 or IPv6 literal; a scoped or malformed address is
 * skipped) and `options timeout:N attempts:N`; comments start with `#` or `;`; every other
 * keyword (search, domain, sortlist, other options) does not concern a stub that asks
 * absolute names.
 */
export function parseResolvConf(text: string): ResolvConf {
  const servers: HostPort[] = []
  let timeoutMs: number | undefined
  let attempts: number | undefined
  for (const line of text.split('\n')) {
    const [key, ...words] = line.replace(/[#;].*/, '').trim().split(/\s+/)
    if (key === 'nameserver' && servers.length < MAX_NAMESERVERS && words[0] && literalFamily(words[0]) !== 0) {
      servers.push({address: normalizeAddress(words[0]), port: 53})
    } else if (key === 'options') {
      for (const word of words) {
        const timeout = option(word, 'timeout', 1, 30)
        if (timeout !== undefined) timeoutMs = timeout * 1000
        attempts = option(word, 'attempts', 1, 5) ?? attempts
      }
    }
  }
  return {servers: servers.length > 0 ? servers : [LOCAL_NAMESERVER], timeoutMs, attempts}
}
