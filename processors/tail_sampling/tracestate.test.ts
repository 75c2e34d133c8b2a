import { describe, expect, it } from 'vitest';
import { adjustedCount, encodeThreshold, incomingRandomness, incomingThreshold, parseThreshold, thresholdForProbability, withThreshold } from './tracestate.js';

describe('OTEP 235 thresholds', () => {
  it('encodes probabilities as the specification examples', () => {
    expect(encodeThreshold(thresholdForProbability(1))).toBe('0');
    expect(encodeThreshold(thresholdForProbability(0.5))).toBe('8');
    expect(encodeThreshold(thresholdForProbability(0.25))).toBe('c');
    expect(encodeThreshold(thresholdForProbability(0.1))).toBe('e6666666666666');
    expect(adjustedCount(thresholdForProbability(0.25))).toBe(4);
    expect(parseThreshold('c')).toBe(0xc0000000000000n);
    expect(parseThreshold('xyz')).toBeUndefined();
  });
  it('reads th and rv from the ot member', () => {
    expect(incomingThreshold('a=b,ot=rv:00112233445566;th:4')).toBe(0x40000000000000n);
    expect(incomingThreshold('ot=rv:00112233445566')).toBeUndefined();
    expect(incomingRandomness('ot=th:4;rv:00112233445566')).toBe('00112233445566');
  });
  it('sets and erases th, keeping other members and sub-keys', () => {
    expect(withThreshold('', 0xc0000000000000n)).toBe('ot=th:c');
    expect(withThreshold('a=1,ot=rv:00112233445566', 0x80000000000000n)).toBe('ot=th:8;rv:00112233445566,a=1');
    expect(withThreshold('a=1,ot=th:8', undefined)).toBe('a=1');
    expect(withThreshold('ot=th:8;rv:00112233445566', undefined)).toBe('ot=rv:00112233445566');
  });
});
