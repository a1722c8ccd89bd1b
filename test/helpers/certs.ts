/**
 * A throwaway certificate authority for TLS tests, made with the `openssl` command line: a CA certificate and
 * server certificates it signs (EC P-256, short-lived), each with the serial number and subjectAltNames asked for.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface IssuedCertificate {
  /** PEM files. */
  cert: string;
  key: string;
  /** Upper-case hex without leading zeros, as Node reports `serialNumber`. */
  serial: string;
}

export interface TestCa {
  dir: string;
  /** The CA certificate (PEM file) clients must trust. */
  caCert: string;
  caPem: Buffer;
  /** A server certificate signed by this CA for `sans` (e.g. `IP:127.0.0.1`, `DNS:localhost`). */
  issue(name: string, options: { serial: number; sans: string[]; days?: number }): Promise<IssuedCertificate>;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await exec('openssl', args, { cwd });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

export function normalizeSerial(serial: string): string {
  return serial.replace(/:/g, '').toUpperCase().replace(/^0+(?=.)/, '');
}

/** Creates a CA in `dir` (which must exist). */
export async function createTestCa(dir: string, commonName = 'Berth Test CA'): Promise<TestCa> {
  const caKey = path.join(dir, 'ca.key');
  const caCert = path.join(dir, 'ca.crt');
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', caCert,
    '-days', '2', '-subj', `/CN=${commonName}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  const caPem = await readFile(caCert);
  return {
    dir,
    caCert,
    caPem,
    async issue(name, options) {
      const key = path.join(dir, `${name}.key`);
      const csr = path.join(dir, `${name}.csr`);
      const cert = path.join(dir, `${name}.crt`);
      const ext = path.join(dir, `${name}.ext`);
      await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`], dir);
      await writeFile(ext, [
        `subjectAltName=${options.sans.join(',')}`,
        'basicConstraints=CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth',
        '',
      ].join('\n'));
      await openssl(['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-set_serial', `0x${options.serial.toString(16)}`,
        '-days', String(options.days ?? 1), '-extfile', ext, '-out', cert], dir);
      const serial = normalizeSerial(new X509Certificate(await readFile(cert)).serialNumber);
      return { cert, key, serial };
    },
  };
}
