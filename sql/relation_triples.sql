-- Relation graph edges: distinct (head, relation, tail) triples with how often and where they occur.
-- Heads and tails are grouped by their normalised keys (NFKC, width/case/space-folded; rows from
-- before the keys existed by surface form); `head` / `tail` show the form written most often.
SELECT
  MODE(r.head) AS head,
  r.relation,
  MODE(r.tail) AS tail,
  COALESCE(r.head_key, r.head) AS head_key,
  COALESCE(r.tail_key, r.tail) AS tail_key,
  COUNT(*) AS mentions,
  COUNT(DISTINCT r.article_id) AS articles,
  MIN(r.published_date) AS first_seen,
  MAX(r.published_date) AS last_seen,
  SUM(CASE WHEN r.grounded THEN 1 ELSE 0 END) AS grounded_mentions
FROM relations r
GROUP BY COALESCE(r.head_key, r.head), r.relation, COALESCE(r.tail_key, r.tail)
ORDER BY mentions DESC, head_key, r.relation, tail_key
