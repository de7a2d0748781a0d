// Admin operations that HBase's thrift1 API (and so happybase) lacks: creating a table pre-split
// into regions. Run by `hbasectl create-table` as a single-file Java program against the cached jars.
//   create-table TABLE FAMILY:MAX_VERSIONS[,...] [SPLIT_HEX[,...]]   (replaces an existing table)
import java.util.ArrayList;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hbase.HBaseConfiguration;
import org.apache.hadoop.hbase.TableName;
import org.apache.hadoop.hbase.client.Admin;
import org.apache.hadoop.hbase.client.ColumnFamilyDescriptorBuilder;
import org.apache.hadoop.hbase.client.Connection;
import org.apache.hadoop.hbase.client.ConnectionFactory;
import org.apache.hadoop.hbase.client.TableDescriptorBuilder;

public class TableAdmin {
  public static void main(String[] args) throws Exception {
    if (args.length < 3 || !args[0].equals("create-table")) {
      System.err.println("usage: TableAdmin create-table TABLE FAMILY:MAX_VERSIONS[,...] [SPLIT_HEX[,...]]");
      System.exit(2);
    }
    TableName name = TableName.valueOf(args[1]);
    TableDescriptorBuilder table = TableDescriptorBuilder.newBuilder(name);
    for (String fam : args[2].split(",")) {
      String[] parts = fam.split(":");
      table.setColumnFamily(ColumnFamilyDescriptorBuilder.newBuilder(parts[0].getBytes("UTF-8"))
          .setMaxVersions(Integer.parseInt(parts[1])).build());
    }
    List<byte[]> splits = new ArrayList<>();
    if (args.length > 3 && !args[3].isEmpty()) {
      for (String hex : args[3].split(",")) splits.add(hexToBytes(hex));
    }
    Configuration conf = HBaseConfiguration.create();
    try (Connection conn = ConnectionFactory.createConnection(conf); Admin admin = conn.getAdmin()) {
      if (admin.tableExists(name)) {
        if (admin.isTableEnabled(name)) admin.disableTable(name);
        admin.deleteTable(name);
      }
      if (splits.isEmpty()) admin.createTable(table.build());
      else admin.createTable(table.build(), splits.toArray(new byte[0][]));
      System.out.println("created " + name + " with " + (splits.size() + 1) + " regions");
    }
  }

  private static byte[] hexToBytes(String hex) {
    byte[] out = new byte[hex.length() / 2];
    for (int i = 0; i < out.length; i++) out[i] = (byte) Integer.parseInt(hex.substring(2 * i, 2 * i + 2), 16);
    return out;
  }
}
