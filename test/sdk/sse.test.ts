/**
 * parseSse (packages/client/src/sse.ts), the one SSE parser that the SDK's event stream and
 * `kassa listen` share: fed chunk by chunk, with every line-end style and boundaries anywhere.
 */
import { describe, expect, it } from 'vitest';
import { parseSse, type SseEvent } from '../../packages/client/src/sse.ts';

async function parse(chunks: string[]): Promise<SseEvent[]> {
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const ch of chunks) c.enqueue(enc.encode(ch));
      c.close();
    },
  });
  const out: SseEvent[] = [];
  for await (const ev of parseSse(body)) out.push(ev);
  return out;
}

const TEXT = 'retry: 3000\n\n: heartbeat\n\nid: evt_1\nevent: invoice.settled\ndata: {"a":1}\n\nid: evt_2\ndata: line one\ndata:line two\n\n';
const EXPECTED: SseEvent[] = [
  { id: 'evt_1', event: 'invoice.settled', data: '{"a":1}' },
  { id: 'evt_2', data: 'line one\nline two' },
];

describe('parseSse', () => {
  it('reads ids, types and multi-line data; skips comments, retry and data-less events', async () => {
    expect(await parse([TEXT])).toEqual(EXPECTED);
  });

  it('gives the same events whatever the line ends (LF, CRLF, CR) and wherever the chunks split', async () => {
    for (const eol of ['\n', '\r\n', '\r']) {
      const text = TEXT.replace(/\n/g, eol);
      for (let cut = 1; cut < text.length; cut++) {
        expect(await parse([text.slice(0, cut), text.slice(cut)]), `${JSON.stringify(eol)} cut at ${cut}`).toEqual(EXPECTED);
      }
      expect(await parse([...text])).toEqual(EXPECTED); // one character per chunk
    }
  });

  it('drops an event the stream ends in the middle of', async () => {
    expect(await parse(['id: evt_1\ndata: {"a":1}\n\nid: evt_2\ndata: half'])).toEqual([{ id: 'evt_1', data: '{"a":1}' }]);
  });
});
