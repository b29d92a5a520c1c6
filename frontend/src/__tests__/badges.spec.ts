import { checkLines, kitBadge, runBadges, severityRank } from '../badges';
import { IVerifyResult } from '../types';

const kinds = (row: object) =>
  runBadges({ run_id: 'r', ...row }).map(b => b.kind);

describe('runBadges', () => {
  it('no kit at all: no badges', () => {
    expect(kinds({})).toEqual([]);
  });
  it('a draft', () => {
    expect(kinds({ draft: true, draft_ref: 'oci:x/kits/r' })).toEqual([
      'draft'
    ]);
  });
  it('published, signed, clean', () => {
    const b = runBadges({
      run_id: 'r',
      draft: true,
      published: 'reg/ns/kit:v1',
      digest: 'sha256:aa',
      signed: true,
      scan: 'clean'
    });
    expect(b.map(x => x.kind)).toEqual(['published', 'signed', 'scan-clean']);
    expect(b[0].title).toBe('reg/ns/kit:v1@sha256:aa');
    expect(b.map(x => x.label)).toEqual([
      'published',
      'signed ✓',
      'scan clean ✓'
    ]);
  });
  it('clean with accepted findings is still clean', () => {
    expect(kinds({ scan: 'clean (2 accepted)' })).toEqual(['scan-clean']);
  });
  it('findings and blocked verdicts are findings ✗', () => {
    expect(kinds({ published: 'x:v1', scan: 'high (2 findings)' })).toEqual([
      'published',
      'scan-findings'
    ]);
    const b = runBadges({
      run_id: 'r',
      scan: 'blocked: critical (1 findings)'
    });
    expect(b[0].label).toBe('findings ✗');
    expect(b[0].title).toContain('blocked');
  });
  it('signed=false is no badge', () => {
    expect(kinds({ published: 'x:v1', signed: false })).toEqual(['published']);
  });
});

function result(
  verified: boolean,
  checks: Array<[string, boolean, string]>
): IVerifyResult {
  return {
    reference: 'x:v1',
    digest: 'sha256:aa',
    verified,
    checks: checks.map(([name, ok, detail]) => ({ name, ok, detail }))
  };
}

describe('kitBadge', () => {
  it('pending and request errors', () => {
    expect(kitBadge({ signed: true }).kind).toBe('pending');
    expect(kitBadge({ signed: true }, null, 'boom').kind).toBe('error');
  });
  it('verified', () => {
    const b = kitBadge(
      { signed: true },
      result(true, [['signature', true, 'signed by a trusted key']])
    );
    expect(b).toMatchObject({ kind: 'verified', label: 'verified ✓' });
  });
  it('encrypted: signed, the rest needs a recipient key on the server', () => {
    const r = result(false, [
      ['signature', true, 'signed by a trusted key'],
      [
        'attestation:provenance',
        false,
        "the provenance attestation is encrypted for the kit's recipients: pass --decrypt-key"
      ],
      [
        'plaintext digests',
        false,
        'not a recipient of this kit: none of the decryption keys opens layer sha256:ab'
      ]
    ]);
    const b = kitBadge({ signed: true, encrypted: true }, r);
    expect(b).toMatchObject({ kind: 'locked', label: 'encrypted 🔒' });
    expect(b.title).toContain('[encryption] decrypt_keys');
    // the same failures on a kit that is not encrypted, or with a bad signature, stay FAILED
    expect(kitBadge({ signed: true, encrypted: false }, r).kind).toBe('failed');
    const forged = result(false, [
      ['signature', false, 'DSSE signature does not verify'],
      ['plaintext digests', false, 'pass --decrypt-key']
    ]);
    expect(kitBadge({ signed: true, encrypted: true }, forged).kind).toBe(
      'failed'
    );
    // an encrypted kit whose ciphertext was modified is FAILED, not merely locked
    const tampered = result(false, [
      ['signature', true, 'signed by a trusted key'],
      ['blob digests', false, 'sha256:ab… tampered with']
    ]);
    expect(kitBadge({ signed: true, encrypted: true }, tampered).kind).toBe(
      'failed'
    );
  });
  it('unsigned: only the signature is missing', () => {
    const r = result(false, [
      ['signature', false, 'no signature found for this digest'],
      ['attestation provenance', false, 'no attestation'],
      ['manifest', true, 'ok']
    ]);
    expect(kitBadge({ signed: false }, r).kind).toBe('unsigned');
  });
  it('a signed kit whose signature fails is FAILED, naming the check', () => {
    const r = result(false, [
      ['signature', false, 'no signature found for this digest']
    ]);
    expect(kitBadge({ signed: true }, r)).toMatchObject({
      kind: 'failed',
      label: 'FAILED (signature)'
    });
  });
  it('a tampered blob is FAILED', () => {
    const r = result(false, [
      ['signature', true, 'signed by a trusted key'],
      ['blob digests', false, 'layer 2 does not match']
    ]);
    const b = kitBadge({ signed: false }, r);
    expect(b.label).toBe('FAILED (blob digests)');
    expect(b.title).toBe('blob digests: layer 2 does not match');
  });
  it('no checks at all is FAILED', () => {
    expect(kitBadge({}, result(false, [])).label).toBe('FAILED');
  });
});

describe('checkLines', () => {
  it('PASS/FAIL as the CLI prints', () => {
    expect(
      checkLines(
        result(false, [
          ['signature', true, 'ok'],
          ['scan verdict', false, 'high']
        ])
      )
    ).toEqual([
      { status: 'PASS', name: 'signature', detail: 'ok' },
      { status: 'FAIL', name: 'scan verdict', detail: 'high' }
    ]);
  });
});

describe('severityRank', () => {
  it('orders critical first, unknown last', () => {
    const s = ['low', 'nope', 'CRITICAL', 'medium'].sort(
      (a, b) => severityRank(a) - severityRank(b)
    );
    expect(s).toEqual(['CRITICAL', 'medium', 'low', 'nope']);
  });
});
