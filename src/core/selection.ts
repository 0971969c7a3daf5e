// `--stop` selection (SPEC §3, §10). Pure: decisions over parsed entries and resolved addresses.
import type {Entry} from './grammar.js'

/** Every identity of the local host (each --stop, serve's server_address), resolved. */
export interface Stop {
  /** The stop names, lower-cased without trailing dot. */
  readonly names: readonly string[]
  /** Normalised addresses of every identity (the literals, and what the names resolved to). */
  readonly addresses: readonly string[]
}

export interface Selection {
  /** Entries to probe, in list order. */
  readonly candidates: Entry[]
  /** Entries found to be the local host (never probed). */
  readonly local: Entry[]
  /** Human-readable reason for the choice (trace and JSON). */
  readonly reason: string
  /** The local host had to be found (--mx, serve) and is not among the entries: nothing is more preferred (SPEC §10). */
  readonly localNotFound?: boolean
}

/** What --json and the trace say when the local host had to be found and was not (SPEC §10). */
export const LOCAL_NOT_FOUND = 'local host not among the MX'

/** An entry is the local host when its host equals a stop name or shares an address with any identity. */
export function isLocalHost(entry: Entry, addresses: readonly string[], stop: Stop): boolean {
  if (entry.kind === 'name' && stop.names.includes(entry.host)) return true
  const own = entry.kind === 'name' ? addresses : [entry.host]
  return own.some((address) => stop.addresses.includes(address))
}

/**
 * Choose the candidates given which entries are the local host. `mustFindLocal` (--mx and
 * serve with at least one identity, SPEC §10): no local entry means no candidate (an empty
 * list — null MX, NXDOMAIN — has none anyway, and is not said to lack the local host).
 */
export function selectCandidates(entries: readonly Entry[], isLocal: (entry: Entry) => boolean, mustFindLocal = false): Selection {
  const local = entries.filter((entry) => isLocal(entry))
  if (local.length === 0 && mustFindLocal && entries.length > 0) {
    return {candidates: [], local, reason: `${LOCAL_NOT_FOUND}: nothing is known to be more preferred than this host`, localNotFound: true}
  }
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
 * candidate again). Linear in the number of entries. With `mustFindLocal` (SPEC §10) a
 * candidate also needs a known local entry less preferred than it (untilLocalFound).
 */
export function decide(entries: readonly Entry[], local: readonly Localness[], mustFindLocal = false): Decision[] {
  const decisions = decideAnyLocal(entries, local)
  return mustFindLocal && !local.includes(true) ? untilLocalFound(entries, local, decisions) : decisions
}

/**
 * decide() when the local host must be found (SPEC §10) and no entry is known to be it yet:
 * nothing is a candidate yet, and an entry is excluded for good once no pending entry could
 * be the local host and leave it a candidate — one less preferred than it (a higher
 * priority, or, where either has none, a later place). (Once an entry is known local, every
 * completion has a local entry and decideAnyLocal's fates stand.)
 */
function untilLocalFound(entries: readonly Entry[], local: readonly Localness[], decisions: readonly Decision[]): Decision[] {
  let maxOpenPrio = -Infinity
  let lastOpen = -1
  let lastOpenBare = -1
  for (const [i, entry] of entries.entries()) {
    if (local[i] !== undefined) continue
    lastOpen = i
    if (entry.prio === undefined) lastOpenBare = i
    else maxOpenPrio = Math.max(maxOpenPrio, entry.prio)
  }
  return entries.map((entry, i) => {
    if (decisions[i] === 'excluded') return 'excluded'
    const couldBeCandidate = entry.prio === undefined ? lastOpen > i : maxOpenPrio > entry.prio || lastOpenBare > i
    return couldBeCandidate ? undefined : 'excluded'
  })
}

/** decide() by SPEC §3's own rule: no local entry makes every entry a candidate. */
function decideAnyLocal(entries: readonly Entry[], local: readonly Localness[]): Decision[] {
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

/**
 * Which lookups can still change the answer (SPEC §3: a name less preferred than a known
 * local entry, or after it, is never asked for). Entry i's lookup matters when it is a
 * candidate (its addresses are probed), while its own fate is open, or while its being the
 * local host would move the selection: it stands before the first known local entry (in a
 * list with entries without a priority, whose fate depends on that place), or it has a
 * priority below every known local entry's (or the known local entries have none). With no
 * local entry known, every lookup matters. An entry already known to be local needs none.
 */
export function lookupMatters(entries: readonly Entry[], local: readonly Localness[], decisions: readonly Decision[]): (i: number) => boolean {
  let firstLocal = Infinity
  let minLocalPrio = Infinity
  let anyBare = false
  for (const [i, entry] of entries.entries()) {
    if (entry.prio === undefined) anyBare = true
    if (local[i] !== true) continue
    firstLocal = Math.min(firstLocal, i)
    if (entry.prio !== undefined) minLocalPrio = Math.min(minLocalPrio, entry.prio)
  }
  return (i) => {
    if (decisions[i] === 'candidate') return true
    if (local[i] !== undefined) return false
    if (decisions[i] === undefined || firstLocal === Infinity) return true
    const prio = entries[i].prio
    return (anyBare && i < firstLocal) || (prio !== undefined && prio < minLocalPrio)
  }
}
