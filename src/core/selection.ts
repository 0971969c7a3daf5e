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

/** What is known of one entry being the local host: true, false, or undefined while its lookup runs. */
export type Localness = boolean | undefined

/** Where selection stands for one entry: known to be probed, known not to be, or not yet known. */
export type Decision = 'candidate' | 'excluded' | undefined

/**
 * SPEC §3, incrementally: an entry is decided once every completion of the pending lookups
 * gives it the same fate. A `prio:` entry p is a candidate iff it is not local, no entry of
 * priority ≤ p is local, and either some `prio:` entry is local or no entry without a
 * priority before it is; an entry without a priority iff neither it nor any entry before it
 * is local. So a `prio:` entry waits for the entries of priority ≤ p and, while no `prio:`
 * entry is known local, for the entries without a priority before it (and, once one of
 * those is local, for the pending entries of higher priority that could make it a
 * candidate again). Linear in the number of entries.
 */
export function decide(entries: readonly Entry[], local: readonly Localness[]): Decision[] {
  let minLocalPrio = Infinity
  let minOpenPrio = Infinity // lowest priority not known to be not-local
  let maxOpenPrio = -Infinity
  for (const [i, entry] of entries.entries()) {
    if (entry.prio === undefined || local[i] === false) continue
    if (local[i] === true) minLocalPrio = Math.min(minLocalPrio, entry.prio)
    minOpenPrio = Math.min(minOpenPrio, entry.prio)
    maxOpenPrio = Math.max(maxOpenPrio, entry.prio)
  }
  const anyPrioLocal = minLocalPrio < Infinity
  const decisions: Decision[] = []
  let localBefore = false // some entry before this one is local
  let openBefore = false // some entry before this one is local or pending
  let bareLocalBefore = false // the same, for entries without a priority
  let bareOpenBefore = false
  for (const [i, entry] of entries.entries()) {
    const self = local[i]
    if (entry.prio === undefined) {
      if (self === true || localBefore) decisions.push('excluded')
      else if (self === false && !openBefore) decisions.push('candidate')
      else decisions.push(undefined)
    } else {
      const p = entry.prio
      if (self === true || minLocalPrio <= p || (bareLocalBefore && maxOpenPrio <= p)) decisions.push('excluded')
      else if (self === false && minOpenPrio > p && (anyPrioLocal || !bareOpenBefore)) decisions.push('candidate')
      else decisions.push(undefined)
    }
    if (self !== false) openBefore = true
    if (self === true) localBefore = true
    if (entry.prio === undefined && self !== false) bareOpenBefore = true
    if (entry.prio === undefined && self === true) bareLocalBefore = true
  }
  return decisions
}
