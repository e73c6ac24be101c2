"""``evalkit listen analyze`` and ``listen plan``: the panel (:mod:`.panel`: which assessors count, labels), the
statistics per design (:mod:`.mushra`, :mod:`.grades` for ACR/DCR/BS.1116, :mod:`.choices` for AB/ABX), listening
behaviour (:mod:`.behaviour`), the JSON reports (:mod:`.report`) and their plain text (:mod:`.text`)."""
