/** The URL without its password, for logs (a Redis URL may carry one). */
export function redactUrl(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}
