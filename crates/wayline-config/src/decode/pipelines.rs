//! Decoding `pipeline` blocks: steps, nested pipelines, `depends_on` and cycles.

use super::*;

impl Decoder<'_> {
    pub(super) fn pipeline(&mut self, b: &Block) -> Pipeline {
        let name = Self::label(b);
        let ctx = format!("pipeline \"{name}\"");
        self.check(&b.body, &ctx, &[], &[("step", 1)]);
        let file = self.file;
        self.unique_labels(b.body.get_blocks("step").map(|s| (file, s)), "step");
        let mut steps: Vec<Step> = Vec::new();
        for s in b.body.get_blocks("step").filter(|s| s.labels.len() == 1) {
            let sname = Self::label(s);
            let sctx = format!("step \"{sname}\" of pipeline \"{name}\"");
            self.check(
                &s.body,
                &sctx,
                &["depends_on", "image_url", "workspace", "labels"],
                &[("use", 1), ("pipeline", 1)],
            );
            let use_block = self
                .single(&s.body, "use", &sctx)
                .filter(|u| u.labels.len() == 1)
                .map(|u| self.use_block(u));
            let nested = self
                .single(&s.body, "pipeline", &sctx)
                .filter(|p| p.labels.len() == 1)
                .map(|p| self.pipeline(p));
            let kind = match (use_block, nested) {
                (Some(u), None) => {
                    if !STEP_USES.contains(&u.plugin.as_str()) {
                        self.error_help(
                            u.span.clone(),
                            format!("unknown step kind `{}`; a step uses one of build, deploy, release, up, exec, pipeline", u.plugin),
                            did_you_mean(&u.plugin, STEP_USES.iter().copied()),
                        );
                    }
                    StepKind::Use(u)
                }
                (None, Some(p)) => StepKind::Pipeline(Box::new(p)),
                (Some(_), Some(_)) => {
                    self.error(
                        span_of(&s.ident),
                        format!("{sctx} has both `use` and `pipeline`; a step does one thing"),
                    );
                    continue;
                }
                (None, None) => {
                    if s.body.get_blocks("use").next().is_none() {
                        self.error_help(
                            block_head_span(s),
                            format!("{sctx} has no `use` block"),
                            Some("add `use \"build\" {}` (or deploy, release, up, exec), or an embedded `pipeline`".to_owned()),
                        );
                    }
                    continue;
                }
            };
            let depends_on = match s.body.get_attribute("depends_on") {
                Some(a) => self.literal_string_list(a, &sctx),
                None => steps
                    .last()
                    .map(|p| vec![p.name.clone()])
                    .unwrap_or_default(),
            };
            steps.push(Step {
                name: sname,
                kind,
                depends_on,
                image_url: self.expr(&s.body, "image_url"),
                workspace: self.expr(&s.body, "workspace"),
                labels: self.expr(&s.body, "labels"),
            });
        }
        if steps.is_empty() && b.body.get_blocks("step").next().is_none() {
            self.error(block_head_span(b), format!("{ctx} has no steps"));
        }
        Pipeline { name, steps }
    }

    /// Unknown `depends_on` steps and dependency cycles of pipeline `p`, decoded from `block`.
    pub(super) fn check_pipeline_graph(&mut self, p: &Pipeline, block: &Block) {
        let names: Vec<&str> = p.steps.iter().map(|s| s.name.as_str()).collect();
        let step_block = |n: &str| {
            block
                .body
                .get_blocks("step")
                .find(|s| s.labels.first().is_some_and(|l| l.as_str() == n))
        };
        for s in &p.steps {
            for d in &s.depends_on {
                if !names.contains(&d.as_str()) {
                    let span = step_block(&s.name)
                        .and_then(|b| b.body.get_attribute("depends_on"))
                        .map_or(0..0, |a| span_of(&a.value));
                    self.error_help(
                        span,
                        format!(
                            "step \"{}\" depends on unknown step \"{d}\" in pipeline \"{}\"",
                            s.name, p.name
                        ),
                        did_you_mean(d, names.iter().copied()),
                    );
                }
            }
        }
        if let Some(cycle) = find_cycle(p) {
            let first = &cycle[0];
            let span = step_block(first).map_or(0..0, block_head_span);
            self.error(
                span,
                format!(
                    "pipeline \"{}\" has a dependency cycle: {}",
                    p.name,
                    cycle.join(" -> ")
                ),
            );
        }
    }
}

/// A dependency cycle as a list of step names ending with its first element.
pub(crate) fn find_cycle(p: &Pipeline) -> Option<Vec<String>> {
    let idx: HashMap<&str, usize> = p
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut state = vec![0u8; p.steps.len()];
    let mut stack: Vec<usize> = Vec::new();
    fn visit(
        i: usize,
        p: &Pipeline,
        idx: &HashMap<&str, usize>,
        state: &mut [u8],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<String>> {
        state[i] = 1;
        stack.push(i);
        for d in &p.steps[i].depends_on {
            let Some(&j) = idx.get(d.as_str()) else {
                continue;
            };
            if state[j] == 1 {
                let pos = stack.iter().position(|&k| k == j).unwrap_or(0);
                let mut names: Vec<String> = stack[pos..]
                    .iter()
                    .map(|&k| p.steps[k].name.clone())
                    .collect();
                names.push(p.steps[j].name.clone());
                return Some(names);
            }
            if state[j] == 0
                && let Some(c) = visit(j, p, idx, state, stack)
            {
                return Some(c);
            }
        }
        stack.pop();
        state[i] = 2;
        None
    }
    for i in 0..p.steps.len() {
        if state[i] == 0
            && let Some(c) = visit(i, p, &idx, &mut state, &mut stack)
        {
            return Some(c);
        }
    }
    None
}
