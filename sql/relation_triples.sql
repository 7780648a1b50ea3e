-- Relation graph edges: distinct (head, relation, tail) triples with how often and where they occur.
SELECT
  r.head,
  r.relation,
  r.tail,
  COUNT(*) AS mentions,
  COUNT(DISTINCT r.article_id) AS articles,
  MIN(r.published_date) AS first_seen,
  MAX(r.published_date) AS last_seen,
  SUM(CASE WHEN r.grounded THEN 1 ELSE 0 END) AS grounded_mentions
FROM relations r
GROUP BY r.head, r.relation, r.tail
ORDER BY mentions DESC, r.head, r.relation, r.tail
