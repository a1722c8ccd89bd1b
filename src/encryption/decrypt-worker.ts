/**
 * Worker thread behind src/encryption/parallel.ts: reads a sealed object's frames from a file descriptor the main
 * thread opened, runs them through the same `decryptStream` the main thread would use (every check included), and
 * copies the plaintext into the transfer's shared slots, each posted to the main thread and reused once it hands
 * the slot back. Several transfers share the worker, told apart by their id.
 */
import { read } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { noteIngested } from '../memory.ts';
import { BlobCipher, BlobCorruptError, decryptStream, type BlobHeader } from './format.ts';
import type { ByteRange } from '../storage/driver.ts';
import type { FromWorker, ToWorker } from './parallel.ts';

const port = parentPort!;
const READ_CHUNK = 1024 * 1024;

interface Transfer {
  free: number[];
  waiting: (() => void) | null;
  cancelled: boolean;
}

const transfers = new Map<number, Transfer>();

function post(message: FromWorker): void {
  port.postMessage(message);
}

function readAt(fd: number, buf: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, 0, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

/** The stored bytes `stored` covers, read into one reused buffer: decryptStream is done with a chunk before it asks for the next. */
async function* readRange(fd: number, stored: ByteRange, t: Transfer): AsyncGenerator<Buffer> {
  const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, stored.end - stored.start + 1));
  for (let position = stored.start; position <= stored.end && !t.cancelled;) {
    const n = await readAt(fd, buf, Math.min(buf.length, stored.end - position + 1), position);
    if (n === 0) throw new BlobCorruptError(`the stored object ends at byte ${position}, before the frames its header describes`);
    position += n;
    yield buf.subarray(0, n);
  }
}

async function takeSlot(t: Transfer): Promise<number | null> {
  while (t.free.length === 0 && !t.cancelled) await new Promise<void>((resolve) => (t.waiting = resolve));
  return t.cancelled ? null : t.free.shift()!;
}

async function serve(m: Extract<ToWorker, { type: 'serve' }>, t: Transfer): Promise<void> {
  try {
    const cipher = new BlobCipher(Buffer.from(m.dek), m.label);
    const header: BlobHeader = { ...m.header, keyId: Buffer.from(m.header.keyId), raw: Buffer.from(m.header.raw) };
    for await (const plain of decryptStream(readRange(m.fd, m.stored, t), cipher, header, m.range)) {
      // Opened frames die young: pace this thread's minor collections by them (src/memory.ts).
      noteIngested(plain.length);
      for (let off = 0; off < plain.length;) {
        const slot = await takeSlot(t);
        if (slot === null) break;
        const length = Math.min(m.slotSize, plain.length - off);
        new Uint8Array(m.slots, slot * m.slotSize, length).set(plain.subarray(off, off + length));
        off += length;
        post({ type: 'chunk', id: m.id, slot, length });
      }
      if (t.cancelled) break;
    }
    post({ type: 'end', id: m.id });
  } catch (err) {
    post({ type: 'end', id: m.id, error: { message: (err as Error).message, corrupt: err instanceof BlobCorruptError } });
  } finally {
    transfers.delete(m.id);
  }
}

port.on('message', (m: ToWorker) => {
  if (m.type === 'serve') {
    const t: Transfer = { free: Array.from({ length: Math.floor(m.slots.byteLength / m.slotSize) }, (_, i) => i), waiting: null, cancelled: false };
    transfers.set(m.id, t);
    void serve(m, t);
    return;
  }
  const t = transfers.get(m.id);
  if (!t) return;
  if (m.type === 'release') t.free.push(m.slot);
  else t.cancelled = true;
  const wake = t.waiting;
  t.waiting = null;
  wake?.();
});
