return {
	FirstTime = function()
		Tux:says(_"Hi.")
		Npc:says(_"Hello.")
	end,
	{
		id = "node1",
		text = _"Question?",
		code = function()
			Npc:says(_'Answer.')
		end,
	},
}
