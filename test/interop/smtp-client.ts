// An SMTP client for the interop tests: greeting, EHLO, MAIL, RCPT, QUIT over a real socket.
import net from 'node:net'
import {expect} from 'vitest'

/**
 * Talk SMTP to host:port: read the greeting, then send each command after the reply to the
 * one before. Resolves with every reply (multi-line replies joined by \n); bounded by `limitMs`.
 */
export async function dialogue(host: string, port: number, commands: string[], limitMs = 15_000): Promise<string[]> {
  const socket = net.connect({host, port})
  socket.setEncoding('latin1')
  const replies: string[] = []
  let buffer = ''
  const timer = setTimeout(() => socket.destroy(new Error(`dialogue not over after ${limitMs} ms: ${JSON.stringify(replies)}`)), limitMs)
  try {
    await new Promise<void>((resolve, reject) => {
      socket.on('error', reject)
      socket.on('close', () => reject(new Error(`connection closed after ${JSON.stringify(replies)}`)))
      socket.on('data', (data: string) => {
        buffer += data
        for (let reply; (reply = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\n/.exec(buffer)); ) {
          buffer = buffer.slice(reply[0].length)
          replies.push(reply[0].replace(/\r?\n$/, '').replace(/\r\n/g, '\n'))
          const next = commands[replies.length - 1]
          if (next === undefined) resolve()
          else socket.write(`${next}\r\n`)
        }
      })
    })
  } finally {
    clearTimeout(timer)
    socket.destroy()
  }
  return replies
}

/** Exim's reply to RCPT TO:<rcpt> (the 4th reply: greeting, EHLO, MAIL, RCPT, QUIT). */
export async function rcptReply(exim: {host: string; port: number}, rcpt: string): Promise<string> {
  const replies = await dialogue(exim.host, exim.port, ['EHLO client.test', 'MAIL FROM:<sender@client.test>', `RCPT TO:<${rcpt}>`, 'QUIT'])
  expect(replies.slice(0, 3).map((r) => r.slice(0, 3))).toEqual(['220', '250', '250'])
  return replies[3]
}
