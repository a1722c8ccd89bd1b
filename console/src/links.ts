/** Hash routes of the console pages. */
export const link = {
  repositories: () => '#/',
  repository: (name: string) => `#/repo/${encodeURIComponent(name)}`,
  image: (name: string, digest: string) => `#/repo/${encodeURIComponent(name)}/image/${encodeURIComponent(digest)}`,
  lifecycle: (name: string) => `#/repo/${encodeURIComponent(name)}/lifecycle`,
  policy: (name: string) => `#/repo/${encodeURIComponent(name)}/policy`,
  storage: () => '#/storage',
  pullThrough: () => '#/pull-through',
  webhooks: () => '#/webhooks',
  audit: () => '#/audit',
  users: () => '#/users',
};
