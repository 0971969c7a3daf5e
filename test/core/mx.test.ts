// src/core/mx.ts in-process: the domain grammar, and lookupMx's budget and cancellation with
// an injected resolver (the DNS rules themselves are tested through the binary: test/mx.test.ts).
import {describe, expect, it} from 'vitest'

import {FatalError, UsageError} from '../../src/core/errors.js'
import {lookupMx, parseMxDomain, type ResolveMx} from '../../src/core/mx.js'

const now = () => performance.now()

describe('parseMxDomain', () => {
  it.each([
    ['example.org', 'example.org'],
    ['Example.ORG.', 'example.org'],
    ['bücher.example', 'xn--bcher-kva.example'],
    ['MÜNCHEN.de.', 'xn--mnchen-3ya.de'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    ['localhost', 'localhost'],
  ])('%j → %j', (text, ascii) => {
    expect(parseMxDomain(text)).toBe(ascii)
  })

  it.each(['192.0.2.1', '[2001:db8::1]', '2001:db8::1', '010.0.0.1', '127.1', '１２７.０.０.１', '', '.', 'a..b', '-a.test', 'a_b.test',
    'a b.test', 'x.123', 'xn--a.test', `${'a'.repeat(64)}.test`, 'a\u0000.test'])('%j is a usage error', (text) => {
    expect(() => parseMxDomain(text)).toThrow(UsageError)
  })
})

describe('lookupMx: budget and cancellation', () => {
  /** A resolver that never answers, recording whether its signal was aborted. */
  function hung() {
    const seen: {signal?: AbortSignal} = {}
    const resolveMx: ResolveMx = (_name, signal) => {
      seen.signal = signal
      return new Promise(() => {})
    }
    return {resolveMx, seen}
  }

  it('the budget runs out: a FatalError naming the domain, and the resolver is told to stop', async () => {
    const {resolveMx, seen} = hung()
    const started = now()
    const error = await lookupMx('slow.test', {resolveMx, timeoutMs: 50, now}).catch((e) => e)
    expect(error).toBeInstanceOf(FatalError)
    expect(error.message).toBe('cannot look up the MX records of "slow.test": no answer within --timeout 0.05 s (ETIMEOUT)')
    expect(seen.signal?.aborted).toBe(true)
    expect(now() - started).toBeLessThan(2000)
  })

  it('the caller aborts (a serve request ends, SIGTERM): it ends at once, the resolver is told to stop', async () => {
    const {resolveMx, seen} = hung()
    const caller = new AbortController()
    const pending = lookupMx('slow.test', {resolveMx, timeoutMs: 0, now, signal: caller.signal}).catch((e) => e)
    caller.abort('cancelled')
    const error = await pending
    expect(error).toBeInstanceOf(FatalError)
    expect(error.message).toMatch(/cancelled/)
    expect(seen.signal?.aborted).toBe(true)
    // Already aborted: the resolver is asked with an aborted signal, the answer is at once the same.
    expect(await lookupMx('x.test', {resolveMx, timeoutMs: 0, now, signal: caller.signal}).catch((e) => e)).toBeInstanceOf(FatalError)
  })

  it('an answer in time: no timer or listener is left behind (one process answers many requests)', async () => {
    const caller = new AbortController()
    const resolveMx: ResolveMx = async () => ({records: [{priority: 10, exchange: 'mx.test'}], ttl: 60})
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
    const result = await lookupMx('a.test', {resolveMx, timeoutMs: 60_000, now, signal: caller.signal})
    expect(result.entries.map((e) => e.name)).toEqual(['mx.test'])
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBe(before)
    // Aborting the caller afterwards changes nothing and throws nothing.
    caller.abort('cancelled')
  })

  it('concurrent lookups share nothing: each gets its own answer', async () => {
    const resolveMx: ResolveMx = async (name) => ({records: [{priority: name.length, exchange: `mx.${name}`}], ttl: 60})
    const results = await Promise.all(['a.test', 'bb.test', 'ccc.test'].map((d) => lookupMx(d, {resolveMx, timeoutMs: 1000, now})))
    expect(results.map((r) => r.entries.map((e) => `${e.prio}:${e.name}`))).toEqual([['6:mx.a.test'], ['7:mx.bb.test'], ['8:mx.ccc.test']])
  })
})

describe('lookupMx: a lookup that failed for a local reason', () => {
  it.each(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM'])('%s is a system error saying so, not a DNS error', async (code) => {
    const resolveMx: ResolveMx = async () => {
      throw Object.assign(new Error(code), {code})
    }
    const error = await lookupMx('a.test', {resolveMx, timeoutMs: 1000, now}).catch((e) => e)
    expect(error).toBeInstanceOf(FatalError)
    expect(error.message).toBe(`system error: cannot look up the MX records of "a.test": ${code}, this host is out of file descriptors or buffers`)
    expect(error.kind).toBe('system')
  })
})
