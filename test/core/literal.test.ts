// literalFamily (src/core/grammar.ts) against node:net's isIP, the rule it keeps without
// loading node:net: on any text without a zone they agree, except that IPv4 is four decimal
// parts without leading zeros (Node's own rule too); a text with a zone is never a literal.
import fc from 'fast-check'
import {isIP} from 'node:net'
import {describe, expect, it} from 'vitest'

import {literalFamily, normalizeAddress} from '../../src/core/grammar.js'

const hexGroup = fc.stringMatching(/^[0-9a-fA-F]{0,5}$/)
const decimal = fc.oneof(fc.integer({min: 0, max: 300}).map(String), fc.stringMatching(/^[0-9]{1,4}$/))
const dotted = fc.array(decimal, {minLength: 1, maxLength: 5}).map((parts) => parts.join('.'))
const zone = fc.stringMatching(/^%[0-9a-zA-Z.:%\- ]{0,6}$/)
/** IPv6-like texts: groups and empty groups (`::`), maybe a dotted tail, maybe a zone. */
const colons = fc.tuple(fc.array(fc.oneof(hexGroup, fc.constant('')), {minLength: 1, maxLength: 10}), fc.option(dotted), fc.option(zone))
  .map(([groups, tail, z]) => groups.join(':') + (tail ? `:${tail}` : '') + (z ?? ''))
const anyText = fc.oneof(dotted, colons, fc.ipV6(), fc.ipV4Extended(), fc.ipV6().map((a) => a.toUpperCase()), fc.string({maxLength: 16}), fc.stringMatching(/^[0-9a-fA-F:.%x ]{0,24}$/))

describe('literalFamily: node:net\'s isIP, without node:net', () => {
  it('agrees with isIP on any text without a zone; a text with one is 0', () => {
    const reached = {v4: 0, v6: 0, v6tail: 0, none: 0, zone: 0}
    fc.assert(fc.property(anyText, (text) => {
      const expected = text.includes('%') ? 0 : isIP(text)
      expect(literalFamily(text)).toBe(expected)
      if (text.includes('%')) reached.zone++
      else if (expected === 4) reached.v4++
      else if (expected === 6 && text.includes('.')) reached.v6tail++
      else if (expected === 6) reached.v6++
      else reached.none++
    }), {numRuns: 20_000})
    for (const [branch, count] of Object.entries(reached)) expect(count, branch).toBeGreaterThan(50)
  })

  it.each([
    ['192.0.2.1', 4], ['0.0.0.0', 4], ['255.255.255.255', 4], ['01.2.3.4', 0], ['127.1', 0], ['256.1.1.1', 0],
    ['::', 6], ['::1', 6], ['1::', 6], ['1:2:3:4:5:6:7::', 6], ['::ffff:192.0.2.1', 6], ['1:2:3:4:5:6:192.0.2.1', 6],
    ['::07.6.5.96', 0], ['1:2:3:4:5:6:7:192.0.2.1', 0], [':::', 0], ['1::2::3', 0], ['fe80::1%eth0', 0], ['[::1]', 0], ['', 0],
  ] as const)('%s → %i', (text, family) => {
    expect(literalFamily(text)).toBe(family)
  })

  it('normalizeAddress keeps four decimal parts as they are and writes IPv6 as ipaddr.js does', () => {
    expect(normalizeAddress('192.0.2.1')).toBe('192.0.2.1')
    expect(normalizeAddress('::FFFF:192.0.2.1')).toBe('192.0.2.1')
    expect(normalizeAddress('2001:DB8:0:0::1')).toBe('2001:db8::1')
  })
})
