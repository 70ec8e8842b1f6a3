package report

import (
	"os/user"
	"strconv"
	"sync"
)

// idNames caches lookups in the system's user or group database.
type idNames struct {
	mu     sync.Mutex
	names  map[uint32]string
	lookup func(id string) (string, error)
}

func (c *idNames) name(id uint32) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.names[id]; ok {
		return n
	}
	n, err := c.lookup(strconv.FormatUint(uint64(id), 10))
	if err != nil {
		n = "" // unknown id: printed as the number, as acl_to_text does
	}
	if c.names == nil {
		c.names = map[uint32]string{}
	}
	c.names[id] = n
	return n
}

var (
	userNames = &idNames{lookup: func(id string) (string, error) {
		u, err := user.LookupId(id)
		if err != nil {
			return "", err
		}
		return u.Username, nil
	}}
	groupNames = &idNames{lookup: func(id string) (string, error) {
		g, err := user.LookupGroupId(id)
		if err != nil {
			return "", err
		}
		return g.Name, nil
	}}
)

// SystemUserName returns the name the system's user database (passwd, via
// NSS where the build has cgo) gives uid, or "" when it has none. It is
// meant for Report.UserName: aide prints named ACL entries with names
// (acl_to_text), resolved when the report is made. Safe for concurrent use;
// results are cached for the life of the process.
func SystemUserName(uid uint32) string { return userNames.name(uid) }

// SystemGroupName is SystemUserName for the group database.
func SystemGroupName(gid uint32) string { return groupNames.name(gid) }
