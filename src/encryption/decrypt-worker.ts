/**
 * Worker thread behind src/encryption/parallel.ts: reads a sealed object's frames from a file descriptor the main
 * thread opened, runs them through the same `decryptStream` the main thread would use (every check included), and
 * copies the plaintext into the transfer's shared slots, each posted to the main thread and reused once it hands
 * the slot back. Several transfers share the worker, told apart by their id.
 */
import { parentPort } from 'node:worker_threads';
import { noteIngested } from '../memory.ts';
import { BlobCipher, BlobCorruptError, decryptStream, FRAME_OVERHEAD, type BlobHeader } from './format.ts';
import { readFrames } from './read-frames.ts';
import type { FromWorker, ToWorker } from './parallel.ts';

const port = parentPort!;
interface Transfer {
  free: number[];
  waiting: (() => void) | null;
  cancelled: boolean;
}

const transfers = new Map<number, Transfer>();

function post(message: FromWorker): void {
  port.postMessage(message);
}

async function takeSlot(t: Transfer): Promise<number | null> {
  while (t.free.length === 0 && !t.cancelled) await new Promise<void>((resolve) => (t.waiting = resolve));
  return t.cancelled ? null : t.free.shift()!;
}

async function serve(m: Extract<ToWorker, { type: 'serve' }>, t: Transfer): Promise<void> {
  try {
    const cipher = new BlobCipher(Buffer.from(m.dek), m.label);
    const header: BlobHeader = { ...m.header, keyId: Buffer.from(m.header.keyId), raw: Buffer.from(m.header.raw) };
    // Opened frames are gathered into a slot until it is full (several frames per slot), then handed over.
    let slot: number | null = null;
    let filled = 0;
    const frames = decryptStream(readFrames(m.fd, m.stored, header.frameSize + FRAME_OVERHEAD, t), cipher, header, m.range);
    for await (const plain of frames) {
      // Opened frames die young: pace this thread's minor collections by them (src/memory.ts).
      noteIngested(plain.length);
      for (let off = 0; off < plain.length;) {
        if (slot === null) {
          slot = await takeSlot(t);
          if (slot === null) break;
        }
        const length = Math.min(m.slotSize - filled, plain.length - off);
        new Uint8Array(m.slots, slot * m.slotSize + filled, length).set(plain.subarray(off, off + length));
        off += length;
        filled += length;
        if (filled === m.slotSize) {
          post({ type: 'chunk', id: m.id, slot, length: filled });
          slot = null;
          filled = 0;
        }
      }
      if (t.cancelled) break;
    }
    if (slot !== null && filled > 0 && !t.cancelled) post({ type: 'chunk', id: m.id, slot, length: filled });
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
