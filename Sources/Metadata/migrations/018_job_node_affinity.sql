-- Scale-out: a job whose input lives on one VM's disk (an uploaded file in TESSERA_IMPORT_DIR) names
-- that node; only that node's workers claim it. NULL (every other job) = any worker. Rescues and
-- retries leave the column alone, so a retried upload stays with its file.
ALTER TABLE jobs ADD COLUMN node text;
-- No index of its own: the claim still walks jobs_ready (queue, run_at, id) in order and checks
-- `node IS NULL OR node = $me` on the rows it visits. The only rows it skips are another node's
-- waiting uploads, few by construction (TESSERA_IMPORT_MAX_RUNNING per organisation), whereas an
-- index keyed on node would lose the (run_at, id) order the claim needs.
