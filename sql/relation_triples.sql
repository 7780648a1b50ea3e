-- Relation graph edges: distinct (head, relation, tail) triples with how often and where they occur.
-- Heads and tails are grouped by their normalised keys (NFKC, width/case/space-folded; rows from
-- before the keys existed by surface form); `head` / `tail` show the form written most often
-- (ties: the first in code-point order). Plain SQL that Spark and DuckDB both run alike (no MODE:
-- its tie-break differs between engines), so `giellm-batch sql --engine duckdb` gives the same rows.
WITH keyed AS (
  SELECT r.*, COALESCE(r.head_key, r.head) AS hk, COALESCE(r.tail_key, r.tail) AS tk FROM relations r
),
edges AS (
  SELECT hk AS head_key, relation, tk AS tail_key,
         COUNT(*) AS mentions,
         COUNT(DISTINCT article_id) AS articles,
         MIN(published_date) AS first_seen,
         MAX(published_date) AS last_seen,
         SUM(CASE WHEN grounded THEN 1 ELSE 0 END) AS grounded_mentions
  FROM keyed
  GROUP BY hk, relation, tk
),
heads AS (
  SELECT hk, relation, tk, head,
         ROW_NUMBER() OVER (PARTITION BY hk, relation, tk ORDER BY COUNT(*) DESC, head) AS n
  FROM keyed GROUP BY hk, relation, tk, head
),
tails AS (
  SELECT hk, relation, tk, tail,
         ROW_NUMBER() OVER (PARTITION BY hk, relation, tk ORDER BY COUNT(*) DESC, tail) AS n
  FROM keyed GROUP BY hk, relation, tk, tail
)
SELECT h.head, e.relation, t.tail, e.head_key, e.tail_key, e.mentions, e.articles, e.first_seen, e.last_seen,
       e.grounded_mentions
FROM edges e
JOIN heads h ON h.n = 1 AND h.hk IS NOT DISTINCT FROM e.head_key AND h.relation IS NOT DISTINCT FROM e.relation
            AND h.tk IS NOT DISTINCT FROM e.tail_key
JOIN tails t ON t.n = 1 AND t.hk IS NOT DISTINCT FROM e.head_key AND t.relation IS NOT DISTINCT FROM e.relation
            AND t.tk IS NOT DISTINCT FROM e.tail_key
ORDER BY e.mentions DESC, e.head_key, e.relation, e.tail_key
