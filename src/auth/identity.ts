/** Identifiers and ARNs in the AWS formats clients expect. */
import { randomBytes } from 'node:crypto';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function randomUpper(n: number): string {
  const bytes = randomBytes(n);
  let out = '';
  for (const b of bytes) out += ALNUM[b % ALNUM.length];
  return out;
}

/** `AKIA` + 16 characters, like an AWS access key id. */
export function newAccessKeyId(): string {
  return `AKIA${randomUpper(16)}`;
}

/** 40 characters of base64 alphabet, like an AWS secret access key. */
export function newSecretAccessKey(): string {
  return randomBytes(30).toString('base64').replace(/\+/g, 'x').replace(/\//g, 'y');
}

export function newUserId(): string {
  return `AIDA${randomUpper(17)}`;
}

export function userArn(account: string, name: string): string {
  return `arn:aws:iam::${account}:user/${name}`;
}

export function repositoryArn(region: string, account: string, name: string): string {
  return `arn:aws:ecr:${region}:${account}:repository/${name}`;
}

/** IAM user names: letters, digits and +=,.@_- up to 64 characters. */
export const USER_NAME = /^[\w+=,.@-]{1,64}$/;
