import { describe, expect, it } from 'vitest';
import { filterWithin, isValidTopicFilter, isValidTopicName, topicMatches } from '../../../../broker/auth/topic-filter.js';

describe('topic filters', () => {
  it.each([
    ['a/b', 'a/b', true],
    ['a/+', 'a/b', true],
    ['a/+', 'a/b/c', false],
    ['a/#', 'a', true], // [MQTT-4.7.1-2]: # also matches the parent level
    ['a/#', 'a/b/c', true],
    ['+/+', 'a/b', true],
    ['+', '', true],
    ['a/+/c', 'a//c', true], // an empty level is a level [MQTT-4.7.1-3]
    ['#', '$SYS/x', false], // [MQTT-4.7.2-1]
    ['+/x', '$SYS/x', false],
    ['$SYS/#', '$SYS/x', true],
    ['a/b', 'a/b/c', false],
    ['a/b/c', 'a/b', false],
  ])('%s matches %s: %s', (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected);
  });

  it('agrees with matching level by level after splitting, on thousands of random filters and topics', () => {
    // The reading of [MQTT-4.7] that topicMatches implements without splitting.
    const reference = (filter: string, topic: string) => {
      const f = filter.split('/');
      const t = topic.split('/');
      if ((f[0] === '+' || f[0] === '#') && t[0]!.startsWith('$')) return false;
      for (let i = 0; i < f.length; i++) {
        if (f[i] === '#') return true;
        if (t[i] === undefined) return false;
        if (f[i] !== '+' && f[i] !== t[i]) return false;
      }
      return f.length === t.length;
    };
    let seed = 42;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const level = (wild: boolean) => (wild ? ['+', '#', 'a', 'b', '', '$SYS', 'ab'] : ['a', 'b', '', '$SYS', 'ab', 'a+b'])[random(wild ? 7 : 6)]!;
    const join = (wild: boolean) => Array.from({ length: 1 + random(4) }, () => level(wild)).join('/');
    for (let i = 0; i < 20_000; i++) {
      const filter = join(true);
      const topic = join(false);
      expect(topicMatches(filter, topic), `${filter} ~ ${topic}`).toBe(reference(filter, topic));
    }
  });

  it.each([
    ['a/b', 'a/b', true],
    ['a/b', 'a/+', true],
    ['a/+', 'a/+', true],
    ['a/+', 'a/b', false],
    ['a/b/#', 'a/#', true],
    ['a/#', 'a/b/#', false],
    ['a', 'a/#', true], // the grant a/# covers the parent a
    ['a/#', 'a/+', false], // a/# also matches a/x/y
    ['a/#', 'a/+/#', false], // a/# also matches a itself
    ['a/+/c', 'a/+/#', true],
    ['#', '#', true],
    ['$SYS/#', '#', false], // # does not reach $ topics, so it cannot grant them
    ['$SYS/#', '$SYS/#', true],
    ['+/#', '$SYS/#', false],
    ['a/b/c', 'a/b', false],
  ])('%s within %s: %s', (filter, grant, expected) => {
    expect(filterWithin(filter, grant)).toBe(expected);
  });

  it('tells valid topic names and filters from invalid ones', () => {
    expect(isValidTopicName('a/b')).toBe(true);
    expect(isValidTopicName('a/+')).toBe(false);
    expect(isValidTopicName('a/#')).toBe(false);
    expect(isValidTopicName('')).toBe(false);
    expect(isValidTopicName('a\u0000b')).toBe(false);
    expect(isValidTopicFilter('a/+/#')).toBe(true);
    expect(isValidTopicFilter('#')).toBe(true);
    expect(isValidTopicFilter('a/#/b')).toBe(false);
    expect(isValidTopicFilter('a#')).toBe(false);
    expect(isValidTopicFilter('a/b+')).toBe(false);
    expect(isValidTopicFilter('')).toBe(false);
  });
});
