// `--stop` selection (SPEC §3). Pure: decisions over parsed entries and resolved addresses.
import type {Entry} from './grammar.js'

export interface Stop {
  /** The stop name, lower-cased without trailing dot, when --stop named a host. */
  readonly name?: string
  /** Normalised addresses of the stop (the literal, or what its name resolved to). */
  readonly addresses: readonly string[]
}

export interface Selection {
  /** Entries to probe, in list order. */
  readonly candidates: Entry[]
  /** Entries found to be the local host (never probed). */
  readonly local: Entry[]
  /** Human-readable reason for the choice (trace and JSON). */
  readonly reason: string
}

/** An entry is the local host when its host equals the stop name or shares an address with it. */
export function isLocalHost(entry: Entry, addresses: readonly string[], stop: Stop): boolean {
  if (stop.name !== undefined && entry.kind === 'name' && entry.host === stop.name) return true
  const own = entry.kind === 'name' ? addresses : [entry.host]
  return own.some((address) => stop.addresses.includes(address))
}

/** Choose the candidates given which entries are the local host. */
export function selectCandidates(entries: readonly Entry[], isLocal: (entry: Entry) => boolean): Selection {
  const local = entries.filter((entry) => isLocal(entry))
  if (local.length === 0) return {candidates: [...entries], local, reason: 'no entry is the local host: every entry is a candidate'}
  const firstLocal = local[0].index
  const prios = local.flatMap((entry) => (entry.prio === undefined ? [] : [entry.prio]))
  const notLocal = entries.filter((entry) => !isLocal(entry))
  if (prios.length > 0) {
    const p = Math.min(...prios)
    const candidates = notLocal.filter((entry) =>
      entry.prio === undefined ? entry.index < firstLocal : entry.prio < p,
    )
    return {candidates, local, reason: `local host has priority ${p}: candidates have a lower priority, or none and stand before it`}
  }
  const candidates = notLocal.filter((entry) => entry.index < firstLocal)
  return {candidates, local, reason: 'local host has no priority: candidates stand before it'}
}
