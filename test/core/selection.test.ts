// `--stop` selection (SPEC §3): the pure rule, then the same rules through check() with a
// fake resolver (names need no network) and a fake attempt that records what was probed.
import {describe, expect, it} from 'vitest'

import type {AttemptFn} from '../../src/core/attempt.js'
import {check, type CheckOptions} from '../../src/core/check.js'
import {FatalError} from '../../src/core/errors.js'
import {parseServerList, parseStop} from '../../src/core/grammar.js'
import type {Resolver} from '../../src/core/resolve.js'
import {isLocalHost, selectCandidates, type Stop} from '../../src/core/selection.js'

/** Candidates chosen when the entries whose names are in `local` are the local host. */
function pick(words: string[], local: string[]): string[] {
  const entries = parseServerList(words)
  return selectCandidates(entries, (entry) => local.includes(entry.name)).candidates.map((e) => e.name)
}

describe('selectCandidates (pure)', () => {
  it('no entry is the local host: every entry, in list order', () => {
    expect(pick(['20:b', '10:a', 'c'], [])).toEqual(['b', 'a', 'c'])
  })

  it('local host with priority P: entries with a priority strictly below P, wherever they stand', () => {
    expect(pick(['30:c', '20:b', '10:a', '5:z'], ['b'])).toEqual(['a', 'z'])
  })

  it('same priority as the local host is not a candidate (SPEC §8 first example)', () => {
    expect(pick(['10:s1', '10:s2', '20:s3'], ['s2'])).toEqual([])
  })

  it('higher priorities are never candidates', () => {
    expect(pick(['10:s1', '20:s2', '30:s3'], ['s2'])).toEqual(['s1'])
  })

  it('unprioritised entries count only before the first local-host entry', () => {
    expect(pick(['u1', '10:a', '20:local', 'u2', '5:late'], ['local'])).toEqual(['u1', 'a', 'late'])
  })

  it('local host without a priority: the entries before it in list order, whatever their priority', () => {
    expect(pick(['30:a', 'b', 'local', '1:c', 'd'], ['local'])).toEqual(['a', 'b'])
  })

  it('local host first and unprioritised: no candidate', () => {
    expect(pick(['local', '1:a', 'b'], ['local'])).toEqual([])
  })

  it('several local entries: the lowest priority counts, unprioritised ones stop at the first', () => {
    // Local entries at 30 (first) and 20: P = 20; u2 stands after the first local entry.
    expect(pick(['u1', '30:l1', 'u2', '10:a', '20:l2', '25:b', '15:c'], ['l1', 'l2'])).toEqual(['u1', 'a', 'c'])
  })

  it('several local entries, one unprioritised: the priority of the other counts', () => {
    expect(pick(['5:a', 'l1', '10:b', '20:l2', '15:c', 'u'], ['l1', 'l2'])).toEqual(['a', 'b', 'c'])
  })

  it('local entries are never candidates, and are reported', () => {
    const entries = parseServerList(['10:a', '5:l'])
    const selection = selectCandidates(entries, (e) => e.name === 'l')
    expect(selection.local.map((e) => e.name)).toEqual(['l'])
    expect(selection.candidates.map((e) => e.name)).toEqual([])
  })
})

describe('selectCandidates when the local host must be found (SPEC §10: --mx, serve)', () => {
  const pickFound = (words: string[], local: string[]) => selectCandidates(parseServerList(words), (entry) => local.includes(entry.name), true)

  it('no entry is the local host: no candidate, and it says why', () => {
    const selection = pickFound(['10:a', '20:b', '30:c'], [])
    expect(selection.candidates).toEqual([])
    expect(selection.localNotFound).toBe(true)
    expect(selection.reason).toMatch(/^local host not among the MX/)
  })

  it('once found, the ordinary rule (SPEC §3)', () => {
    expect(pickFound(['10:a', '20:b', '30:c'], ['b']).candidates.map((e) => e.name)).toEqual(['a'])
    expect(pickFound(['10:a', '20:b', '30:c'], ['b']).localNotFound).toBeUndefined()
  })
})

describe('isLocalHost (pure)', () => {
  const [named, v4, v6, mapped] = parseServerList(['10:S2.Domain.Com.', '192.0.2.1', '[2001:DB8:0::1]', '::ffff:192.0.2.9'])

  it('a name equal to the stop name, case- and trailing-dot-insensitively', () => {
    expect(isLocalHost(named, [], {names: ['s2.domain.com'], addresses: ['198.51.100.1']})).toBe(true)
    expect(isLocalHost(named, [], {names: ['s1.domain.com'], addresses: ['198.51.100.1']})).toBe(false)
    expect(isLocalHost(named, [], {names: ['s1.domain.com', 's2.domain.com'], addresses: []})).toBe(true)
  })

  it('a name sharing any resolved address with the stop', () => {
    const stop: Stop = {names: [], addresses: ['2001:db8::1', '192.0.2.7']}
    expect(isLocalHost(named, ['192.0.2.6', '192.0.2.7'], stop)).toBe(true)
    expect(isLocalHost(named, ['192.0.2.6'], stop)).toBe(false)
  })

  it('a literal equal to a stop address after normalisation', () => {
    const stopOf = (text: string): Stop => {
      const parsed = parseStop(text)
      if (!('address' in parsed)) throw new Error('expected an address')
      return {names: [], addresses: [parsed.address]}
    }
    expect(isLocalHost(v4, [], stopOf('::ffff:192.0.2.1'))).toBe(true)
    expect(isLocalHost(v6, [], stopOf('2001:db8::1'))).toBe(true)
    expect(isLocalHost(v6, [], stopOf('2001:DB8:0:0::1'))).toBe(true)
    expect(isLocalHost(mapped, [], stopOf('192.0.2.9'))).toBe(true)
    expect(isLocalHost(v4, [], stopOf('192.0.2.2'))).toBe(false)
  })

  it('a literal entry is not the local host because of its text alone matching a stop name', () => {
    expect(isLocalHost(v4, ['192.0.2.1'], {names: ['192.0.2.1'], addresses: []})).toBe(false)
  })
})

// ---- Through check(): a fake resolver and a fake attempt (no network at all).

const ZONE: Record<string, string[]> = {
  's1.domain.com': ['192.0.2.1'],
  's2.domain.com': ['192.0.2.2', '2001:db8::2'],
  's3.domain.com': ['192.0.2.3'],
  'alias-of-s2.example': ['2001:db8::2'],
  'mx-a.example': ['198.51.100.1'],
  'mx-b.example': ['198.51.100.2'],
}

const fakeResolver: Resolver = async (name) => {
  const addresses = ZONE[name.toLowerCase().replace(/\.$/, '')]
  return addresses ? {outcome: 'resolved', addresses} : {outcome: 'nxdomain', addresses: [], error: 'ENOTFOUND'}
}

/** Runs check(); every probed address answers `220` unless listed in `down`. */
async function run(args: {stop?: string | string[]; words: string[]; down?: string[]; sequential?: boolean; mustFindLocal?: boolean}) {
  const probed: string[] = []
  const attempt: AttemptFn = async (address) => {
    probed.push(address)
    return args.down?.includes(address) ? {outcome: 'refused', error: 'ECONNREFUSED'} : {outcome: 'available', line: '220 hi'}
  }
  const options: CheckOptions = {
    entries: parseServerList(args.words),
    stops: [args.stop ?? []].flat().map((text) => parseStop(text)),
    mustFindLocal: args.mustFindLocal,
    timeoutMs: 5000,
    port: 25,
    attemptDelayMs: 250,
    sequential: args.sequential ?? true,
  }
  const report = await check(options, {resolver: fakeResolver, attempt, now: () => performance.now()})
  return {
    winner: report.winner?.name,
    exitCode: report.exitCode,
    candidates: report.selection.candidates.map((e) => e.name),
    local: report.selection.local.map((e) => e.name),
    probed,
  }
}

describe('selection through check()', () => {
  it('SPEC §8 first example: exits 0 without probing, s1 up or not', async () => {
    for (const down of [[], ['192.0.2.1']]) {
      const r = await run({stop: 's2.domain.com', words: ['10:s1.domain.com', '10:s2.domain.com', '20:s3.domain.com'], down})
      expect(r).toEqual({winner: undefined, exitCode: 0, candidates: [], local: ['s2.domain.com'], probed: []})
    }
  })

  it('SPEC §8 second example: prints s1 and exits 1 when s1 is up, exits 0 when it is down', async () => {
    const words = ['10:s1.domain.com', '20:s2.domain.com', '30:s3.domain.com']
    expect(await run({stop: 's2.domain.com', words})).toEqual({
      winner: 's1.domain.com', exitCode: 1, candidates: ['s1.domain.com'], local: ['s2.domain.com'], probed: ['192.0.2.1'],
    })
    const down = await run({stop: 's2.domain.com', words, down: ['192.0.2.1']})
    expect(down).toMatchObject({winner: undefined, exitCode: 0, probed: ['192.0.2.1']})
  })

  it('stop given as an address matches an entry through its resolved addresses', async () => {
    const r = await run({stop: '2001:DB8:0::2', words: ['10:s1.domain.com', '10:alias-of-s2.example', '5:s3.domain.com']})
    expect(r.local).toEqual(['alias-of-s2.example'])
    expect(r.candidates).toEqual(['s3.domain.com'])
    expect(r.probed).toEqual(['192.0.2.3'])
  })

  it('stop given as an ::ffff-mapped IPv4 address matches the IPv4 entry', async () => {
    const r = await run({stop: '::ffff:192.0.2.2', words: ['10:s1.domain.com', '20:s2.domain.com']})
    expect(r.local).toEqual(['s2.domain.com'])
    expect(r.winner).toBe('s1.domain.com')
  })

  it('stop given as a name matches another name with a shared address', async () => {
    const r = await run({stop: 'S2.DOMAIN.COM.', words: ['30:mx-b.example', '20:alias-of-s2.example', '10:mx-a.example']})
    expect(r.local).toEqual(['alias-of-s2.example'])
    expect(r.candidates).toEqual(['mx-a.example'])
  })

  it('stop given as a name matches a literal entry equal to one of its addresses', async () => {
    const r = await run({stop: 's2.domain.com', words: ['10:mx-a.example', '20:[2001:db8::2]', '15:mx-b.example']})
    expect(r.local).toEqual(['[2001:db8::2]'])
    expect(r.candidates).toEqual(['mx-a.example', 'mx-b.example'])
  })

  it('no entry is the local host: every entry is a candidate, probed in list order (--sequential)', async () => {
    const r = await run({stop: '192.0.2.99', words: ['20:mx-b.example', '10:mx-a.example'], down: ['198.51.100.2']})
    expect(r.candidates).toEqual(['mx-b.example', 'mx-a.example'])
    expect(r.probed).toEqual(['198.51.100.2', '198.51.100.1'])
    expect(r.winner).toBe('mx-a.example')
  })

  it('without --stop every entry is a candidate; the first available in list order is printed', async () => {
    const r = await run({words: ['s3.domain.com', 's1.domain.com']})
    expect(r).toMatchObject({winner: 's3.domain.com', exitCode: 1, probed: ['192.0.2.3']})
  })

  it('several identities: an entry matching any of them is the local host (NAT: private address, public name)', async () => {
    const r = await run({stop: ['10.0.0.20', 's2.domain.com'], words: ['10:s1.domain.com', '20:s2.domain.com', '30:s3.domain.com']})
    expect(r).toEqual({winner: 's1.domain.com', exitCode: 1, candidates: ['s1.domain.com'], local: ['s2.domain.com'], probed: ['192.0.2.1']})
    const byAddress = await run({stop: ['10.0.0.20', '2001:db8::2'], words: ['10:s1.domain.com', '20:s2.domain.com']})
    expect(byAddress.local).toEqual(['s2.domain.com'])
  })

  it('the local host to be found (--mx, serve) and not found: exit 0, nothing probed; without --stop, every entry', async () => {
    const words = ['10:s1.domain.com', '20:s3.domain.com']
    expect(await run({stop: ['10.0.0.20'], words, mustFindLocal: true})).toEqual({winner: undefined, exitCode: 0, candidates: [], local: [], probed: []})
    expect(await run({words, mustFindLocal: true})).toMatchObject({winner: 's1.domain.com', exitCode: 1})
  })

  it('an empty list: exit 0, nothing probed', async () => {
    expect(await run({stop: '192.0.2.1', words: []})).toEqual({winner: undefined, exitCode: 0, candidates: [], local: [], probed: []})
  })

  it('a candidate name that does not resolve is unavailable, not an error', async () => {
    const r = await run({words: ['10:nx.example', '20:s1.domain.com']})
    expect(r).toMatchObject({winner: 's1.domain.com', exitCode: 1, probed: ['192.0.2.1']})
  })

  it('a stop name that does not resolve is a FatalError naming it, before anything is probed', async () => {
    const probed: string[] = []
    const promise = check(
      {entries: parseServerList(['10:s1.domain.com']), stops: [parseStop('nx.example')], timeoutMs: 5000, port: 25, attemptDelayMs: 250, sequential: false},
      {resolver: fakeResolver, attempt: async (a) => (probed.push(a), {outcome: 'available'}), now: () => performance.now()},
    )
    await expect(promise).rejects.toThrow(FatalError)
    await expect(promise).rejects.toThrow('"nx.example"')
    expect(probed).toEqual([])
  })
})
