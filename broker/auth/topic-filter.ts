/**
 * MQTT topic names and filters as the ACL needs them: does a filter match a
 * topic, and does everything one filter can match lie within another. Pure.
 */

/** A topic a client may publish to: not empty, no wildcards, no NUL [MQTT-4.7.3-1], [MQTT-3.3.2-2], [MQTT-4.7.3-2]. */
export function isValidTopicName(topic: string): boolean {
  return topic.length > 0 && Buffer.byteLength(topic) <= 65_535 && !/[+#\u0000]/.test(topic);
}

/** `#` only as the whole last level, `+` only as a whole level [MQTT-4.7.1-2], [MQTT-4.7.1-3]. */
export function isValidTopicFilter(filter: string): boolean {
  if (filter.length === 0 || Buffer.byteLength(filter) > 65_535 || filter.includes('\u0000')) return false;
  const levels = filter.split('/');
  return levels.every((l, i) => (l.includes('#') ? l === '#' && i === levels.length - 1 : !l.includes('+') || l === '+'));
}

/** Topics starting with `$` are not matched by a filter starting with a wildcard [MQTT-4.7.2-1]. */
function wildcardAtRootMissesDollar(first: string | undefined, topicFirst: string): boolean {
  return (first === '+' || first === '#') && topicFirst.startsWith('$');
}

/** Whether `filter` matches the topic name `topic`. */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  if (wildcardAtRootMissesDollar(f[0], t[0]!)) return false;
  for (let i = 0; i < f.length; i++) {
    const fl = f[i]!;
    // `a/#` also matches `a` itself [MQTT-4.7.1-2].
    if (fl === '#') return true;
    const tl = t[i];
    if (tl === undefined) return false;
    if (fl !== '+' && fl !== tl) return false;
  }
  return f.length === t.length;
}

/**
 * Whether every topic `filter` can match is also matched by `grant`: a
 * subscription is allowed only if it cannot reach beyond what is granted.
 */
export function filterWithin(filter: string, grant: string): boolean {
  const f = filter.split('/');
  const g = grant.split('/');
  if (f[0]!.startsWith('$') && (g[0] === '+' || g[0] === '#')) return false;
  for (let i = 0; ; i++) {
    const gl = g[i];
    const fl = f[i];
    if (gl === '#') return true;
    if (fl === undefined) return gl === undefined;
    if (gl === undefined || fl === '#') return false;
    if (gl === '+') continue;
    if (fl !== gl) return false;
  }
}
