package lab

// MACOwners names the NIC each of a Seed's NIC MACs belongs to, as
// "node1 eth1", so that a report can say whose MAC a table holds.
type MACOwners map[string]string

// MACOwners returns the owners of the Seed's NIC MACs.
func (s *Seed) MACOwners() MACOwners {
	owners := make(MACOwners)
	for _, n := range s.Nodes {
		for nic, mac := range n.NICMACs {
			owners[mac] = n.Name + " " + nic
		}
	}
	return owners
}

// MAC spells mac followed by its owner, if known: "0e:…:01 (node1 eth1)".
func (o MACOwners) MAC(mac string) string {
	if owner, ok := o[mac]; ok {
		return mac + " (" + owner + ")"
	}
	return mac
}

// Neighbor spells a neighbour entry's MAC, with its owner, and state:
// "none" when there is no entry.
func (o MACOwners) Neighbor(nb Neighbor) string {
	switch {
	case nb.State == "":
		return "none"
	case nb.MAC == "":
		return nb.State
	}
	return o.MAC(nb.MAC) + " " + nb.State
}
