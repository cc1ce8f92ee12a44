--[[WIKI
PURPOSE = "$$NAME$$ tests the dialog reader"
WIKI]]--
local Npc = FDrpg.get_npc()
local Tux = FDrpg.get_tux()

return {
	FirstTime = function()
		Tux:says(_"Hello! Who are you?")
		Npc:says(_"I test things. Mostly doors.")
		Npc:says(_"This one opens, see?", "NO_WAIT")
	end,

	{
		id = "node0",
		text = _"Why doors?",
		code = function()
			Npc:says(_"Because nobody else does.")
			hide("node0")
		end,
	},
}
