"""``evalkit listen prepare``: a test folder from a run (:mod:`.design`): excerpts and loudness (:mod:`.stimuli`),
stimulus files (:mod:`.stimulus_files`), trials per listener (:mod:`.assign`), the headphone check
(:mod:`.headphone`), the run's decoded audio (:mod:`.runsource`) and the researcher's texts (:mod:`.texts`)."""
