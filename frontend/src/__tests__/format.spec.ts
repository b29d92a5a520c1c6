import {
  draftSections,
  flattenRows,
  formatDuration,
  formatSize,
  formatTime,
  formatValue,
  oneLine,
  parseAccept,
  pinnedReference,
  repositoryFromLocation,
  shortDigest
} from '../format';

describe('formatSize', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [5 * 1024 * 1024, '5.0 MiB'],
    [3.25 * 1024 ** 3, '3.3 GiB'],
    [2 * 1024 ** 5, '2048.0 TiB']
  ])('%p → %p', (n, s) => expect(formatSize(n)).toBe(s));
  it('missing values are a dash', () => {
    expect(formatSize(null)).toBe('—');
    expect(formatSize(undefined)).toBe('—');
    expect(formatSize(NaN)).toBe('—');
  });
});

describe('formatTime', () => {
  it('formats RFC 3339 in UTC', () => {
    expect(formatTime('2026-03-04T05:06:07.891Z', 'utc')).toBe(
      '2026-03-04 05:06:07'
    );
    expect(formatTime('2026-03-04T05:06:07+02:00', 'utc')).toBe(
      '2026-03-04 03:06:07'
    );
  });
  it('missing or invalid is a dash', () => {
    expect(formatTime(null)).toBe('—');
    expect(formatTime('not a time')).toBe('—');
  });
  it('local time has the same shape', () => {
    expect(formatTime('2026-03-04T05:06:07Z')).toMatch(
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/
    );
  });
});

describe('formatDuration', () => {
  it.each([
    [850, '850 ms'],
    [12_340, '12.3 s'],
    [245_000, '4 min 05 s'],
    [-1, '—']
  ])('%p → %p', (ms, s) => expect(formatDuration(ms)).toBe(s));
});

describe('digests and references', () => {
  const d = 'sha256:' + 'ab'.repeat(32);
  it('shortens to the algorithm and 12 hex digits', () => {
    expect(shortDigest(d)).toBe('sha256:abababababab…');
    expect(shortDigest('ab'.repeat(32))).toBe('abababababab…');
    expect(shortDigest('sha256:abc')).toBe('sha256:abc');
    expect(shortDigest(null)).toBe('—');
  });
  it('pins a reference to its digest once', () => {
    expect(pinnedReference('reg/ns/kit:v1', d)).toBe(`reg/ns/kit:v1@${d}`);
    expect(pinnedReference(`reg/ns/kit@${d}`, d)).toBe(`reg/ns/kit@${d}`);
    expect(pinnedReference('x:v1', d, 'x@pinned')).toBe('x@pinned');
    expect(pinnedReference('x:v1', null)).toBe('x:v1');
  });
});

describe('formatValue', () => {
  it('formats table cells', () => {
    expect(formatValue(null)).toBe('—');
    expect(formatValue(NaN)).toBe('—');
    expect(formatValue(3)).toBe('3');
    expect(formatValue(0.123456789)).toBe('0.1235');
    expect(formatValue(true)).toBe('yes');
    expect(formatValue('x')).toBe('x');
    expect(formatValue({ a: 1 })).toBe('{"a":1}');
  });
});

describe('parseAccept', () => {
  it('splits RULE[:PATH] entries', () => {
    expect(
      parseAccept(
        'pickle.unknown-global:model.pkl, env.unpinned\nzip.flag-mismatch'
      )
    ).toEqual([
      'pickle.unknown-global:model.pkl',
      'env.unpinned',
      'zip.flag-mismatch'
    ]);
    expect(parseAccept('  ')).toEqual([]);
  });
  it('rejects something that is not a rule id', () => {
    expect(() => parseAccept(':model.pkl')).toThrow(/RULE\[:PATH\]/);
    expect(() => parseAccept('!!')).toThrow();
  });
});

describe('oneLine', () => {
  it('keeps the first non-empty line', () => {
    expect(oneLine(new Error('\nfirst\nsecond'))).toBe('first');
    expect(oneLine({ error: 'from server' })).toBe('from server');
    expect(oneLine('x'.repeat(400))).toHaveLength(300);
    expect(oneLine('')).toBe('unknown error');
  });
});

describe('flattenRows', () => {
  it('flattens nested JSON into key paths', () => {
    expect(
      flattenRows({ a: { b: 1, c: [1, 2] }, d: [{ e: 'x' }], f: {}, g: null })
    ).toEqual([
      ['a.b', '1'],
      ['a.c', '1, 2'],
      ['d[0].e', 'x'],
      ['f', '{}'],
      ['g', '—']
    ]);
  });
  it('bounds rows and value length', () => {
    const many: Record<string, number> = {};
    for (let i = 0; i < 50; i++) {
      many[`k${i}`] = i;
    }
    expect(flattenRows(many, 10)).toHaveLength(10);
    expect(flattenRows({ s: 'y'.repeat(1000) }, 10, 20)[0][1]).toHaveLength(20);
    expect(flattenRows('plain')).toEqual([['(value)', 'plain']]);
  });
});

describe('repositoryFromLocation', () => {
  it.each([
    ['modelkit:///srv/kits/fraud', 'oci:/srv/kits/fraud'],
    ['modelkit:/srv/kits/fraud/', 'oci:/srv/kits/fraud'],
    [
      'modelkit://registry.example:5000/team/fraud',
      'registry.example:5000/team/fraud'
    ],
    [
      'modelkit://registry.example/team/fraud?x=1',
      'registry.example/team/fraud'
    ],
    ['s3://bucket/mlruns', ''],
    ['/local/mlruns', ''],
    ['modelkit://', ''],
    [null, '']
  ])('%p → %p', (loc, repo) => expect(repositoryFromLocation(loc)).toBe(repo));
});

describe('draftSections', () => {
  const layer = {
    media_type: 'application/vnd.kitops.modelkit.model.v1.tar',
    digest: 'sha256:' + 'a'.repeat(64),
    size: 10,
    path: 'model',
    files: [{ path: 'model/MLmodel', size: 10, sha256: 'b'.repeat(64) }]
  };
  const runDraft = { reference: 'oci:/k/x:run-1', layers: [layer] };
  const modelDraft = {
    reference: 'oci:/k/x:m-1',
    digest: 'sha256:c',
    layers: [layer]
  };

  it('is empty without any draft', () => {
    expect(draftSections(null)).toEqual([]);
    expect(draftSections({ draft: null, models: [] })).toEqual([]);
    expect(
      draftSections({ draft: null, models: [{ name: 'model', draft: null }] })
    ).toEqual([]);
  });
  it("lists a logged model's draft when the run has none (MLflow 3)", () => {
    const s = draftSections({
      draft: null,
      models: [{ name: 'model', model_id: 'm-1', draft: modelDraft }]
    });
    expect(s).toEqual([
      {
        kind: 'model',
        label: "logged model 'model'",
        modelId: 'm-1',
        draft: modelDraft
      }
    ]);
  });
  it("puts the run's draft first, then each model's, once per reference", () => {
    const other = { ...modelDraft, reference: 'oci:/k/x:m-2' };
    const s = draftSections({
      draft: runDraft,
      models: [
        { name: 'a', model_id: 'm-1', draft: modelDraft },
        { name: 'b', model_id: 'm-2', draft: other },
        { name: 'c', model_id: 'm-1', draft: modelDraft },
        { name: 'd' }
      ]
    });
    expect(s.map(x => [x.kind, x.label, x.draft.reference])).toEqual([
      ['run', 'run artifacts', 'oci:/k/x:run-1'],
      ['model', "logged model 'a'", 'oci:/k/x:m-1'],
      ['model', "logged model 'b'", 'oci:/k/x:m-2']
    ]);
  });
  it('skips malformed drafts', () => {
    const bad = { reference: 'x' } as unknown as typeof modelDraft;
    expect(draftSections({ draft: bad, models: [] })).toEqual([]);
  });
});
