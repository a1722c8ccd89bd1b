/**
 * A webhook receiver for the tests: verifies every delivery's signature (the documented check, replay window
 * included), records what it accepted, and can be told to fail (answer 500), hang (never answer) or answer slowly.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifySignature } from '../../src/events/signature.ts';

export type ReceiverMode = { kind: 'ok' } | { kind: 'fail'; status?: number } | { kind: 'hang' } | { kind: 'slow'; ms: number };

export interface Received {
  eventId: string;
  deliveryId: string;
  signatureValid: boolean;
  event: Record<string, any>;
  at: number;
}

export class WebhookReceiver {
  readonly received: Received[] = [];
  /** Every request, accepted or not. */
  requests = 0;
  mode: ReceiverMode = { kind: 'ok' };
  /** Per-request override: the mode for a request whose event this returns one for. */
  modeFor: ((event: Record<string, any>) => ReceiverMode | undefined) | null = null;
  private server: Server | null = null;
  private readonly hanging = new Set<ServerResponse>();
  private waiters: Array<() => void> = [];

  constructor(public secret: string = '') {}

  get url(): string {
    const { port } = this.server!.address() as AddressInfo;
    return `http://127.0.0.1:${port}/hook`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return this;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    this.requests++;
    const event = JSON.parse(body.toString('utf8')) as Record<string, any>;
    const mode = this.modeFor?.(event) ?? this.mode;
    if (mode.kind === 'hang') {
      this.hanging.add(res);
      res.on('close', () => this.hanging.delete(res));
      return;
    }
    if (mode.kind === 'slow') await new Promise((r) => setTimeout(r, mode.ms));
    if (mode.kind === 'fail') {
      res.writeHead(mode.status ?? 500).end('failing on purpose');
      return;
    }
    const signatureValid = verifySignature(this.secret, body, req.headers['berth-signature'] as string | undefined);
    this.received.push({ eventId: String(req.headers['berth-event-id']), deliveryId: String(req.headers['berth-delivery-id']), signatureValid, event, at: Date.now() });
    res.writeHead(signatureValid ? 204 : 401).end();
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves once `n` deliveries were accepted (or rejects after `timeoutMs`). */
  async waitFor(n: number, timeoutMs = 20_000): Promise<Received[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < n) {
      if (Date.now() > deadline) throw new Error(`the receiver got ${this.received.length} deliveries, not ${n}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200).unref();
      });
    }
    return this.received;
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}
